"""Redaction: scrub secrets from journal events and any JSON-like value. Pure, no I/O.

A :class:`Redactor` replaces what looks like a secret with ``[REDACTED:<kind>]``:

- API keys of well-known formats: OpenAI (``sk-...``, ``sk-proj-...``), Anthropic
  (``sk-ant-...``), AWS access key ids (``AKIA...``/``ASIA...``), GitHub (``ghp_...``,
  ``github_pat_...``), Slack (``xox?-...``) and Google (``AIza...``);
- bearer tokens (``Authorization: Bearer <token>`` keeps ``Bearer`` and drops the token);
- passwords in URLs (``scheme://user:<password>@host``);
- the values of environment variables marked secret (see :meth:`Redactor.from_env`);
- string values stored under sensitive keys (``password``, ``api_key``, ``secret``...);
- extra patterns, and a custom ``str -> str`` hook (for PII).

It is built to run on every event before it is committed, so the common case is
cheap: strings shorter than ``min_length`` are skipped, and a string is handed to the
combined pattern only if a fast prefilter finds a trigger (``sk-``, ``AKIA``, ``://``...)
or one of the secret values in it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Self, TypeVar

from ._events import Event

T = TypeVar("T")

#: Environment variables whose values are always treated as secret when they are set.
WELL_KNOWN_SECRET_ENV: Final = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "COHERE_API_KEY",
    "DEEPSEEK_API_KEY",
    "TOGETHER_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "SLACK_BOT_TOKEN",
    "OTEL_EXPORTER_OTLP_HEADERS",
)

#: Dictionary keys whose string values are redacted whatever they look like.
DEFAULT_SENSITIVE_KEYS: Final = frozenset({
    "password", "passwd", "secret", "client_secret", "api_key", "apikey", "access_token",
    "refresh_token", "authorization", "private_key", "x-api-key",
})

#: Built-in patterns: (kind, regex). A group named ``<kind>_keep`` is kept in the output.
BUILTIN_PATTERNS: Final[tuple[tuple[str, str], ...]] = (
    ("anthropic_key", r"sk-ant-(?<![A-Za-z0-9]sk-ant-)[A-Za-z0-9_\-]{20,}"),
    ("openai_key", r"sk-(?<![A-Za-z0-9]sk-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    ("aws_access_key", r"A[KS]IA(?<![A-Za-z0-9]A[KS]IA)[0-9A-Z]{16}(?![0-9A-Za-z])"),
    ("github_token", r"gh[pousr]_(?<![A-Za-z0-9]gh[pousr]_)[A-Za-z0-9]{36,}"),
    ("github_token", r"github_pat_(?<![A-Za-z0-9]github_pat_)[A-Za-z0-9_]{22,}"),
    ("slack_token", r"xox[abposre]-(?<![A-Za-z0-9]xox[abposre]-)[A-Za-z0-9\-]{10,}"),
    ("google_api_key", r"AIza(?<![A-Za-z0-9]AIza)[0-9A-Za-z_\-]{35}"),
    ("bearer_token", r"(?P<bearer_token_keep>[Bb]earer[ \t]+)[A-Za-z0-9._~+/\-]{8,}=*"),
    ("url_password", r"(?P<url_password_keep>://[^\s:/@?#]*:)[^\s@/?#]+(?=@)"),
)

# Cheap test run before the combined pattern: every built-in pattern contains one of these.
_TRIGGERS = r"[sAgxBb:](?:k-|KIA|SIA|h[pousr]_|ithub_pat_|ox[abposre]-|Iza|earer|//)"


#: How every replacement starts: ``[REDACTED:<kind>]`` (or ``[REDACTED]``).
REDACTED_PREFIX = "[REDACTED"


def _label(kind: str) -> str:
    return f"{REDACTED_PREFIX}:{kind}]"


class Redactor:
    """Replaces secrets in strings, JSON-like values and events.

    Args:
        secrets: Literal secret values, as ``{label: value}`` (the label names the
            kind in the replacement, e.g. an environment variable's name) or an
            iterable of values (labelled ``secret``). Values shorter than
            ``min_length`` are ignored: they would redact ordinary words.
        patterns: Extra regular expressions, as ``{kind: regex}``; a match becomes
            ``[REDACTED:<kind>]``. With extra patterns every string of at least
            ``min_length`` characters is searched (no prefilter).
        hook: Called last on every non-empty string (after the patterns), e.g. to
            scrub PII; it must return the string to keep.
        builtin: Use the built-in key, token and URL-password patterns.
        sensitive_keys: Dictionary keys whose string values are always redacted
            (as given, in lower, UPPER or Title case).
        min_length: Strings shorter than this are left alone (except by ``hook``).
    """

    def __init__(
        self,
        *,
        secrets: Mapping[str, str] | Iterable[str] = (),
        patterns: Mapping[str, str | re.Pattern[str]] | None = None,
        hook: Callable[[str], str] | None = None,
        builtin: bool = True,
        sensitive_keys: Iterable[str] = DEFAULT_SENSITIVE_KEYS,
        min_length: int = 8,
    ) -> None:
        self.min_length = max(1, min_length)
        self.hook = hook
        pairs = secrets.items() if isinstance(secrets, Mapping) else (
            ("secret", v) for v in secrets
        )
        values: dict[str, str] = {}
        for label, value in pairs:
            if value and len(value) >= self.min_length and value not in values:
                values[value] = label
        self._secret_labels = values
        self._secrets = tuple(sorted(values, key=len, reverse=True))
        keys = {k.lower() for k in sensitive_keys}
        self._keys = frozenset(keys | {k.upper() for k in keys} | {k.title() for k in keys})
        self._labels: dict[str, str] = {}
        self._keep: dict[str, str] = {}
        parts: list[str] = []
        if self._secrets:
            parts.append("(?P<_secret>" + "|".join(re.escape(v) for v in self._secrets) + ")")
        extra = dict(patterns or {})
        for index, (kind, regex) in enumerate(extra.items()):
            source = regex.pattern if isinstance(regex, re.Pattern) else regex
            name = f"_x{index}"
            self._labels[name] = _label(kind)
            parts.append(f"(?P<{name}>{source})")
        if builtin:
            for index, (kind, regex) in enumerate(BUILTIN_PATTERNS):
                name = f"_b{index}"
                self._labels[name] = _label(kind)
                keep = f"{kind}_keep"
                if f"(?P<{keep}>" in regex:
                    unique = f"_k{index}"
                    regex = regex.replace(f"(?P<{keep}>", f"(?P<{unique}>")
                    self._keep[name] = unique
                parts.append(f"(?P<{name}>{regex})")
        self._regex = re.compile("|".join(parts)) if parts else None
        self._triggers = re.compile(_TRIGGERS) if builtin else None
        self._always = bool(extra)

    # -- construction ----------------------------------------------------------------

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Self:
        """A redactor configured from the environment.

        - the values of the variables named in ``TETHER_SECRET_ENV`` (comma-separated)
          and of :data:`WELL_KNOWN_SECRET_ENV` (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``
          ...) that are set, labelled ``env:<NAME>``;
        - extra patterns from ``TETHER_REDACT_PATTERNS``, a JSON object ``{kind: regex}``.

        Keyword arguments are passed on to the constructor (``hook=...``; ``secrets``
        and ``patterns`` are added to those from the environment).
        """
        env = os.environ if environ is None else environ
        names = [n.strip() for n in env.get("TETHER_SECRET_ENV", "").split(",") if n.strip()]
        secrets: dict[str, str] = {}
        for name in (*WELL_KNOWN_SECRET_ENV, *names):
            value = env.get(name)
            if value:
                secrets[f"env:{name}"] = value
        given = kwargs.pop("secrets", {})
        if isinstance(given, Mapping):
            secrets.update(given)
        else:
            secrets.update({f"secret{i}": v for i, v in enumerate(given)})
        patterns: dict[str, str | re.Pattern[str]] = {}
        raw = env.get("TETHER_REDACT_PATTERNS", "").strip()
        if raw:
            try:
                loaded = json.loads(raw)
            except json.JSONDecodeError as e:
                from ._errors import ConfigurationError

                raise ConfigurationError(
                    f"TETHER_REDACT_PATTERNS is not valid JSON ({e.msg})",
                    hint='set it to a JSON object such as {"ticket": "TCK-[0-9]{6}"}',
                ) from e
            patterns.update({str(k): str(v) for k, v in dict(loaded).items()})
        patterns.update(kwargs.pop("patterns", None) or {})
        return cls(secrets=secrets, patterns=patterns, **kwargs)

    # -- strings ---------------------------------------------------------------------

    def _replace(self, match: re.Match[str]) -> str:
        name = match.lastgroup or ""
        if name == "_secret":
            return _label(self._secret_labels.get(match.group(), "secret"))
        keep = self._keep.get(name)
        label = self._labels.get(name, f"{REDACTED_PREFIX}]")
        return match.group(keep) + label if keep else label

    def redact_text(self, text: str) -> str:
        """``text`` with every secret replaced (the same object if there is none)."""
        if len(text) >= self.min_length and self._regex is not None:
            if self._always or self._has_trigger(text):
                text = self._regex.sub(self._replace, text)
        if self.hook is not None and text:
            text = self.hook(text)
        return text

    def _has_trigger(self, text: str) -> bool:
        if self._triggers is not None and self._triggers.search(text) is not None:
            return True
        for value in self._secrets:
            if value in text:
                return True
        return False

    # -- values ----------------------------------------------------------------------

    def redact(self, value: T) -> T:
        """``value`` (str, dict, list, tuple, scalars) with its strings redacted.

        Containers are copied only where something changed; otherwise the very same
        object is returned.
        """
        return self._value(value)  # type: ignore[no-any-return]

    __call__ = redact

    def _value(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            if len(value) < self.min_length and self.hook is None:
                return value
            return self.redact_text(value)
        if kind is dict:
            out: dict[Any, Any] | None = None
            keys = self._keys
            scan = self._value
            minimum = self.min_length if self.hook is None else 1
            for key, item in value.items():
                kind = type(item)
                if kind is str:
                    if key in keys and item:
                        new: Any = _label(key.lower())
                    elif len(item) < minimum:
                        continue
                    else:
                        new = self.redact_text(item)
                elif kind is int or kind is float or kind is bool or item is None:
                    continue
                else:
                    new = scan(item)
                if new is not item:
                    if out is None:
                        out = dict(value)
                    out[key] = new
            return value if out is None else out
        if kind is list or kind is tuple:
            items: list[Any] | None = None
            for index, item in enumerate(value):
                new = self._value(item)
                if new is not item:
                    if items is None:
                        items = list(value)
                    items[index] = new
            if items is None:
                return value
            return tuple(items) if kind is tuple else items
        if isinstance(value, str | dict | list | tuple):  # subclasses: the slow path
            return self._subclass(value)
        return value

    def _subclass(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return self._value(dict(value))
        if isinstance(value, tuple):
            return self._value(tuple(value))
        return self._value(list(value))

    def redact_event(self, event: Event) -> Event:
        """``event`` with its payload redacted (the same object if nothing changed)."""
        payload = self._value(event.payload)
        if payload is event.payload:
            return event
        return dataclasses.replace(event, payload=payload)
