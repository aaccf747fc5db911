"""Model selection: one string, the same in Python, the CLI and ``TETHER_MODEL``.

=============================================  ==========================================
string                                         model
=============================================  ==========================================
``local``                                      the embedded SmolLM2-135M-Instruct (default)
``local:/path/model.gguf``                     any GGUF file, run in-process
``openai:gpt-4.1-mini``                        OpenAI (``OPENAI_API_KEY``)
``anthropic:claude-sonnet-4-5``                Anthropic (``ANTHROPIC_API_KEY``)
``openai-compatible:http://host:8080/v1#m``    any OpenAI-compatible server, model ``m``
=============================================  ==========================================

Credentials come from the environment only, never from the string (which is
journaled with each run).
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..core import ConfigurationError
from ._protocol import Model

ProviderName = Literal["local", "openai", "anthropic", "openai-compatible"]

#: The environment variable holding the selection string.
MODEL_ENV = "TETHER_MODEL"
#: The selection used when neither the caller nor the environment names a model.
DEFAULT_MODEL = "local"
#: Key for ``openai-compatible:`` servers; optional for servers on this machine.
COMPATIBLE_KEY_ENV = "OPENAI_COMPATIBLE_API_KEY"
#: Sent as the key to a local OpenAI-compatible server when none is configured.
NO_KEY = "not-needed"

_FORMS = (
    "local | local:/path/model.gguf | openai:MODEL | anthropic:MODEL | "
    "openai-compatible:http://HOST:PORT/v1#MODEL"
)
_SCHEMES = ("local", "openai", "anthropic", "openai-compatible")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """A parsed model selection string.

    ``model`` is the model name (``None`` for local models, whose name is the file's);
    ``base_url`` is set for ``openai-compatible``; ``path`` for ``local:PATH`` (``None``
    meaning the embedded default).
    """

    provider: ProviderName
    model: str | None = None
    base_url: str | None = None
    path: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """Parse a selection string; see :func:`parse_model_spec`."""
        return parse_model_spec(text)

    def __str__(self) -> str:
        if self.provider == "local":
            return f"local:{self.path}" if self.path else "local"
        if self.provider == "openai-compatible":
            return f"openai-compatible:{self.base_url}#{self.model}"
        return f"{self.provider}:{self.model}"


def _malformed(text: str, why: str, hint: str | None = None) -> ConfigurationError:
    return ConfigurationError(
        f"model selection {text!r} is malformed: {why}",
        hint=hint or f"set {MODEL_ENV} (or pass --model) to one of: {_FORMS}",
    )


def parse_model_spec(text: str) -> ModelSpec:
    """Parse a model selection string such as ``openai:gpt-4.1-mini``.

    Raises:
        ConfigurationError: the string is not one of the documented forms; the error
            names ``TETHER_MODEL`` and the forms it accepts.
    """
    value = text.strip()
    if not value:
        raise _malformed(text, "it is empty")
    scheme, sep, rest = value.partition(":")
    if scheme not in _SCHEMES:
        if value.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
            guess = f"openai:{value}"
        elif value.startswith("claude"):
            guess = f"anthropic:{value}"
        elif value.endswith(".gguf"):
            guess = f"local:{value}"
        else:
            guess = None
        hint = f"set {MODEL_ENV}={guess}" if guess else None
        raise _malformed(text, f"unknown provider {scheme!r}", hint)
    rest = rest.strip()
    if scheme == "local":
        if sep and not rest:
            raise _malformed(text, "'local:' must be followed by the path of a .gguf file")
        return ModelSpec(provider="local", path=rest or None)
    if not rest:
        raise _malformed(text, f"'{scheme}:' must be followed by a model name")
    if scheme in ("openai", "anthropic"):
        if any(c.isspace() for c in rest) or "#" in rest:
            raise _malformed(text, f"{rest!r} is not a model name")
        return ModelSpec(provider=scheme, model=rest)  # type: ignore[arg-type]
    base_url, _, model = rest.partition("#")
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise _malformed(text, f"{base_url!r} is not an http(s) URL")
    model = model.strip()
    if not model:
        raise _malformed(
            text,
            "the model name is missing after '#'",
            f"set {MODEL_ENV}=openai-compatible:{base_url}#MODEL_NAME",
        )
    return ModelSpec(provider="openai-compatible", model=model, base_url=base_url.rstrip("/"))


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _credential(env: Mapping[str, str], name: str, provider: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(
            f"the {provider} provider needs an API key and {name} is not set",
            hint=f"set {name} in the environment (keys are never read from code or the journal)",
        )
    return value


def select_model(
    spec: str | ModelSpec | None = None, *, env: Mapping[str, str] | None = None
) -> Model:
    """The model a selection string names, with credentials from the environment.

    Args:
        spec: A selection string or parsed spec; when ``None``, ``TETHER_MODEL`` from the
            environment, else ``local`` (the embedded default model).
        env: Where to read ``TETHER_MODEL`` and credentials; ``os.environ`` by default.

    Raises:
        ConfigurationError: a malformed string, a missing credential (naming the
            variable to set) or a missing optional dependency (naming the extra).
    """
    environ = os.environ if env is None else env
    if spec is None:
        spec = environ.get(MODEL_ENV, "").strip() or DEFAULT_MODEL
    parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
    if parsed.provider == "local":
        from ._local import LocalModel

        return LocalModel(parsed.path)
    if parsed.provider == "anthropic":
        from ._anthropic import AnthropicModel

        return AnthropicModel(
            parsed.model or "",
            api_key=_credential(environ, "ANTHROPIC_API_KEY", "anthropic"),
            base_url=environ.get("ANTHROPIC_BASE_URL") or None,
        )
    from ._openai import OpenAIModel

    if parsed.provider == "openai":
        return OpenAIModel(
            parsed.model or "",
            api_key=_credential(environ, "OPENAI_API_KEY", "openai"),
            base_url=environ.get("OPENAI_BASE_URL") or None,
        )
    base_url = parsed.base_url or ""
    key = environ.get(COMPATIBLE_KEY_ENV, "").strip()
    if not key:
        if not _is_loopback(base_url):
            raise ConfigurationError(
                f"the OpenAI-compatible server at {base_url} is not on this machine and "
                f"{COMPATIBLE_KEY_ENV} is not set",
                hint=f"set {COMPATIBLE_KEY_ENV} to the server's key (any value if it needs "
                "none); OPENAI_API_KEY is never sent to other servers",
            )
        key = NO_KEY
    return OpenAIModel(
        parsed.model or "",
        api_key=key,
        base_url=base_url,
        provider="openai-compatible",
        credential_var=COMPATIBLE_KEY_ENV,
    )
