"""Redaction: scrub secrets from journal events and any JSON-like value. Pure, no I/O.

A :class:`Redactor` replaces what looks like a secret with ``[REDACTED:<kind>]``:

- API keys of well-known formats: OpenAI (``sk-...``, ``sk-proj-...``), Anthropic
  (``sk-ant-...``), AWS access key ids (``AKIA...``/``ASIA...``), GitHub (``ghp_...``,
  ``github_pat_...``), Slack (``xox?-...``), Google (``AIza...``) and JSON Web Tokens;
- credentials in authorization headers: ``Bearer <token>``, ``Basic <base64>``,
  ``Authorization: Token <token>`` (the scheme is kept, the credential dropped);
- passwords in URLs (``scheme://user:<password>@host``, even with ``/ # @`` in them);
- values assigned to secret-looking names in text (``aws_secret_access_key = ...``,
  ``"password": "..."``, ``DB_PASSWORD=...``) and stored under sensitive keys in
  dicts, also inside JSON text (tool-call arguments, JSON tool results, nested);
- the ``value`` of a named entry, a dict ``{"key"|"name": <sensitive name>, "value":
  ...}`` (a working-memory put, a header list), whatever its type;
- the values of environment variables marked secret (see :meth:`Redactor.from_env`);
- extra patterns, and a custom ``str -> str`` hook (for PII).

Key names are compared case- and separator-insensitively (``apiKey``, ``Api-Key``,
``x-api-key``, ``db_password``, ``auth_token`` are sensitive; ``max_tokens``,
``token_count``, ``input_tokens`` are not). Identifiers (``call_id``,
``idempotency_key``, run ids, tool names...) are never redacted.

It is built to run on every event before it is committed, so the common case is
cheap: strings shorter than ``min_length`` are skipped, and a string is handed to the
combined pattern only if a fast prefilter finds a trigger (``sk-``, ``AKIA``, ``://``,
``eyJ``, a secret-looking name followed by ``=`` or ``:``...) or one of the secret
values in it.
"""

from __future__ import annotations

import base64
import binascii
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

#: Sensitive key names, normalised (lower case, letters and digits only): a key is
#: sensitive when its normalised name *ends with* one of these (``db_password``,
#: ``x-api-key``, ``auth_token``); the value is the kind named in the replacement.
DEFAULT_SENSITIVE_KEYS: Final[Mapping[str, str]] = {
    "password": "password", "passwd": "password", "passphrase": "password",
    "pass": "password", "secret": "secret", "apikey": "api_key",
    "accesskey": "access_key", "secretkey": "secret_key", "privatekey": "private_key",
    "signingkey": "signing_key", "encryptionkey": "encryption_key",
    "masterkey": "master_key", "sessionkey": "session_key", "authkey": "auth_key",
    "token": "token", "authorization": "authorization", "auth": "authorization",
    "credential": "credentials", "credentials": "credentials", "cookie": "cookie",
}
#: Names that end like a sensitive key and are not secrets (tokenizer settings...).
NOT_SENSITIVE: Final = frozenset({
    "eostoken", "bostoken", "padtoken", "unktoken", "septoken", "clstoken", "masktoken",
    "starttoken", "endtoken", "stoptoken", "maxtoken", "mintoken", "numtoken",
    "totaltoken", "bypass", "compass", "firstpass", "secondpass", "onepass", "multipass",
    "oauth", "noauth",
})
#: Keys whose values identify things (calls, runs, idempotency keys): never redacted in
#: the runtime's own structure, since the runtime and the store's projections read them
#: back (they are redacted like anything else in tool arguments and JSON text).
IDENTIFIER_KEYS: Final = frozenset({
    "call_id", "idempotency_key", "tool_call_id", "run_id", "parent_run_id",
    "child_run_id", "response_id",
})
#: Top-level payload fields that name things (tools, models, agents): never redacted.
PAYLOAD_IDENTIFIERS: Final = IDENTIFIER_KEYS | {
    "tool", "agent", "agent_spec", "provider", "model", "to_tool", "from_tool",
    "model_key", "from_model", "to_model", "price_table", "ran",
}
_CALL_IDENTIFIERS = IDENTIFIER_KEYS | {"id"}  # in a tool call: {"id", "name", "arguments"}
_NOTHING: frozenset[str] = frozenset()
_MISS: Any = object()

# A name that may be sensitive (the replacement checks it with the key rule).
_NAME = (r"[A-Za-z0-9_.\-]*?(?i:pass(?:word|wd|phrase)?|secret|token|api[_\-]?key"
         r"|access[_\-]?key|private[_\-]?key|auth(?:orization)?|credentials?|cookie)"
         r"[A-Za-z0-9_.\-]*")
# A credential after a scheme: not a plain word, with a digit or symbol or 20+ chars.
_CRED = (r"(?![A-Za-z][a-z]*(?![A-Za-z0-9_~+/=\-]|\.[A-Za-z0-9_~+/\-]))"
         r"(?=[A-Za-z0-9._~+/\-]*[0-9_~+/\-]|[A-Za-z0-9._~+/\-]{20})(?=[A-Za-z0-9._~+/\-]{%d})"
         r"[A-Za-z0-9_~+/\-]+(?:\.[A-Za-z0-9_~+/\-]+)*=*")

#: Built-in patterns: (kind, regex). A group named ``keep`` is kept in the output; a
#: group named ``name`` is checked against the sensitive-key rule.
BUILTIN_PATTERNS: Final[tuple[tuple[str, str], ...]] = (
    ("anthropic_key", r"sk-ant-(?<![A-Za-z0-9]sk-ant-)[A-Za-z0-9_\-]{20,}"),
    # A bare sk- key is random base62 (upper case and digits): not "sk-learn-compatible".
    ("openai_key", r"sk-(?<![A-Za-z0-9]sk-)(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}"
                   r"|(?=[A-Za-z0-9_\-]*[A-Z])(?=[A-Za-z0-9_\-]*[0-9])[A-Za-z0-9_\-]{20,})"),
    ("aws_access_key", r"A[KS]IA(?<![A-Za-z0-9]A[KS]IA)[0-9A-Z]{16}(?![0-9A-Za-z])"),
    ("github_token", r"gh[pousr]_(?<![A-Za-z0-9]gh[pousr]_)[A-Za-z0-9]{36,}"),
    ("github_token", r"github_pat_(?<![A-Za-z0-9]github_pat_)[A-Za-z0-9_]{22,}"),
    ("slack_token", r"xox[abposre]-(?<![A-Za-z0-9]xox[abposre]-)[A-Za-z0-9\-]{10,}"),
    ("google_api_key", r"AIza(?<![A-Za-z0-9]AIza)[0-9A-Za-z_\-]{35}"),
    ("jwt", r"eyJ(?<![A-Za-z0-9_\-]eyJ)[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}"
            r"\.[A-Za-z0-9_\-]*"),
    ("url_password", r"(?P<keep>(?:\b[A-Za-z][A-Za-z0-9+.\-]*)?://[^\s:/@?#\"'<>]*:)"
                     r"[^\s\"'<>]+(?=@[A-Za-z0-9.\-\[\]:]+(?:[/?#\s\"'<>),;\]}]|$))"),
    ("bearer_token", r"(?P<keep>\b[Bb]earer[ \t]+)" + _CRED % 8),
    ("basic_auth", r"(?P<keep>\b[Bb]asic[ \t]+)[A-Za-z0-9+/]{8,}={0,2}(?![A-Za-z0-9+/=])"),
    ("authorization", r"(?P<keep>\b[Aa]uthorization[\"']?[ \t]*[:=][ \t]*[\"']?"
                      r"(?![Bb]earer[ \t]|[Bb]asic[ \t])(?:[A-Za-z][A-Za-z0-9_\-]*[ \t]+)?)"
                      + _CRED % 6),
    ("key", r"(?P<keep>\"(?P<name>" + _NAME + r")\"[ \t]*:[ \t]*\")(?:[^\"\\\n]|\\.)+"),
    # ...and in JSON text inside a JSON string (escaped quotes), malformed or cut off.
    ("key", r"(?P<keep>\\+\"(?P<name>" + _NAME + r")\\+\"[ \t]*:[ \t]*\\+\")[^\"\\\n]+"),
    ("key", r"(?P<keep>'(?P<name>" + _NAME + r")'[ \t]*:[ \t]*')(?:[^'\\\n]|\\.)+"),
    ("key", r"(?P<keep>(?<![A-Za-z0-9_.\-/])(?P<name>" + _NAME + r")[ \t]*[=:][ \t]*)"
            r"(?![Bb]earer[ \t]|[Bb]asic[ \t])"
            r"(?P<value>\"[^\"\n]+\"|'[^'\n]+'|(?!\[REDACTED)[^\s\"',;()\[\]{}<>]+"
            r"(?=[\s\"',;)\]}]|$))"),
)

# Cheap test run before the combined pattern: every built-in pattern contains one of these.
_TRIGGERS = r"[sAgxBb:](?:k-|KIA|SIA|h[pousr]_|ithub_pat_|ox[abposre]-|Iza|earer|asic|//)"
# ...and ``eyJ`` (a JWT), and names assigned with ``=`` or ``:`` (case-insensitive
# regexes are slow: these are looked for with ``in`` in the lower-cased text).
_NAME_HINTS = ("pass", "secret", "token", "key", "auth", "credential", "cookie")
_PLAIN = re.compile(r"[A-Za-z][a-z]*|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+"
                    r"|[0-9]{1,7}|[A-Za-z]+(?:[ -][A-Za-z]+)*")
_NORMAL = re.compile(r"[^a-z0-9]")
_CACHE_LIMIT = 4096


#: How every replacement starts: ``[REDACTED:<kind>]`` (or ``[REDACTED]``).
REDACTED_PREFIX = "[REDACTED"


def _label(kind: str) -> str:
    return f"{REDACTED_PREFIX}:{kind}]"


def sensitive_key_kind(
    name: str, stems: Mapping[str, str] = DEFAULT_SENSITIVE_KEYS
) -> str | None:
    """The kind of secret a key name holds (``"password"`` for ``db_password``,
    ``"api_key"`` for ``Api-Key``), or None if its values are not secret by name."""
    normal = _NORMAL.sub("", name.lower())
    for cut in range(len(normal)):
        tail = normal[cut:]
        if tail in NOT_SENSITIVE:
            return None
        kind = stems.get(tail)
        if kind is not None:
            return kind
    return None


def _secretish(value: str) -> bool:
    """Whether an unquoted value assigned to a secret name looks like a secret (and not
    like a word, a dotted name, a small number or ``None``)."""
    word = value.rstrip(".:")  # the end of a sentence
    return len(word) >= 6 and _PLAIN.fullmatch(word) is None


def _basic_credentials(value: str) -> bool:
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


_SCALARS = (int, float, bool, type(None))


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
        builtin: Use the built-in key, token, URL-password and assignment patterns.
        sensitive_keys: Key names whose string values are always redacted, compared
            case- and separator-insensitively by suffix (``password`` also covers
            ``db_password`` and ``dbPassword``): an iterable of names, or a mapping
            ``{name: kind}``. Default :data:`DEFAULT_SENSITIVE_KEYS`.
        min_length: Strings shorter than this are left alone (except by ``hook`` and
            the sensitive-key rule).
    """

    def __init__(
        self,
        *,
        secrets: Mapping[str, str] | Iterable[str] = (),
        patterns: Mapping[str, str | re.Pattern[str]] | None = None,
        hook: Callable[[str], str] | None = None,
        builtin: bool = True,
        sensitive_keys: Mapping[str, str] | Iterable[str] = DEFAULT_SENSITIVE_KEYS,
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
        if isinstance(sensitive_keys, Mapping):
            stems = {_NORMAL.sub("", k.lower()): v for k, v in sensitive_keys.items()}
        else:
            stems = {_NORMAL.sub("", k.lower()): k.lower() for k in sensitive_keys}
        self._stems = {k: v for k, v in stems.items() if k}
        self._key_kinds: dict[Any, str | None] = {}
        self._key_texts: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        self._keep: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._values: dict[str, str] = {}
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
                for group, table in (("keep", self._keep), ("name", self._names),
                                     ("value", self._values)):
                    if f"(?P<{group}>" in regex:
                        unique = f"_{group[0]}{index}"
                        regex = regex.replace(f"(?P<{group}>", f"(?P<{unique}>")
                        table[name] = unique
                parts.append(f"(?P<{name}>{regex})")
        self._basic = {n for n, k in zip(
            (f"_b{i}" for i in range(len(BUILTIN_PATTERNS))), BUILTIN_PATTERNS, strict=True)
            if k[0] == "basic_auth"} if builtin else set()
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

    def key_kind(self, key: Any) -> str | None:
        """The kind of secret stored under ``key`` by name (see ``sensitive_keys``)."""
        kinds = self._key_kinds
        try:
            return kinds[key]
        except KeyError:
            pass
        kind = (sensitive_key_kind(key, self._stems)
                if type(key) is str and self._stems else None)
        if len(kinds) < _CACHE_LIMIT:
            kinds[key] = kind
        return kind

    def _replace(self, match: re.Match[str]) -> str:
        name = match.lastgroup or ""
        if name == "_secret":
            return _label(self._secret_labels.get(match.group(), "secret"))
        label = self._labels.get(name, f"{REDACTED_PREFIX}]")
        keep = self._keep.get(name)
        kept = match.group(keep) if keep else ""
        named = self._names.get(name)
        if named is not None:
            kind = self.key_kind(match.group(named))
            value_group = self._values.get(name)
            rest = match.group(name)[len(kept):]
            if kind is None:
                return kept + self._scan(rest)
            if value_group is not None:  # an unquoted assignment: quoted, or secret-like
                if rest[:1] in ("'", '"'):
                    return kept + rest[0] + _label(kind) + rest[0]
                if not _secretish(rest):
                    return kept + self._scan(rest)
            return kept + _label(kind)
        if name in self._basic and not _basic_credentials(match.group(name)[len(kept):]):
            return match.group(name)
        return kept + label

    def _scan(self, text: str) -> str:
        return text if self._regex is None else self._regex.sub(self._replace, text)

    def redact_text(self, text: str) -> str:
        """``text`` with every secret replaced (the same object if there is none).

        A string holding a JSON object or array (tool-call arguments, a JSON tool
        result) is parsed and redacted as a value, so sensitive keys count inside it
        too; if anything changed it is written back as JSON.
        """
        if len(text) >= self.min_length and self._regex is not None:
            if text[0] in "{[" and text[-1] in "}]":
                found = self._json(text)
                if found is not None:
                    return found
            if self._always or self._has_trigger(text):
                new = self._regex.sub(self._replace, text)
                if new != text:  # a rejected candidate rebuilds an equal string
                    text = new
        if self.hook is not None and text:
            text = self.hook(text)
        return text

    def _json(self, text: str) -> str | None:
        """``text`` redacted as JSON, or None if it is not JSON."""
        if not (self._always or "\\" in text or self._has_trigger(text)):
            # Nothing in the raw text can be a secret; only the hook is left to apply.
            if self.hook is None:
                return text
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if type(value) is not dict and type(value) is not list:
            return None
        try:
            new = self._value(value, False)
        except RecursionError:
            return None
        return text if new is value else json.dumps(new, ensure_ascii=False)

    def _has_trigger(self, text: str) -> bool:
        if self._triggers is not None:
            if self._triggers.search(text) is not None or "eyJ" in text:
                return True
            if "=" in text or ":" in text:
                lower = text.lower()
                for hint in _NAME_HINTS:
                    if hint in lower:
                        return True
        for value in self._secrets:
            if value in text:
                return True
        return False

    # -- values ----------------------------------------------------------------------

    def redact(self, value: T) -> T:
        """``value`` (str, dict, list, tuple, scalars) with its strings redacted.

        Containers are copied only where something changed; otherwise the very same
        object is returned. Values under sensitive keys are replaced whatever they
        are, and keys that are secrets too (use :meth:`redact_payload` for an event's
        payload, whose identifiers and field names are kept).
        """
        return self._value(value, False)  # type: ignore[no-any-return]

    __call__ = redact

    def _value(self, value: Any, ids: bool) -> Any:
        """``value`` redacted; with ``ids``, identifier keys are kept (the runtime's own
        structure), without (data from outside: arguments, JSON text) nothing is."""
        kind = type(value)
        if kind is str:
            if len(value) < self.min_length and self.hook is None:
                return value
            return self.redact_text(value)
        if kind is dict:
            if not ids:
                return self._dict(value, _NOTHING, False)
            skip = (_CALL_IDENTIFIERS if "arguments" in value and "name" in value
                    else IDENTIFIER_KEYS)
            return self._dict(value, skip, True)
        if kind is list or kind is tuple:
            items: list[Any] | None = None
            for index, item in enumerate(value):
                new = self._value(item, ids)
                if new is not item:
                    if items is None:
                        items = list(value)
                    items[index] = new
            if items is None:
                return value
            return tuple(items) if kind is tuple else items
        if isinstance(value, str | dict | list | tuple):  # subclasses: the slow path
            return self._subclass(value, ids)
        return value

    def _dict(self, value: dict[Any, Any], skip: frozenset[str], ids: bool) -> dict[Any, Any]:
        out: dict[Any, Any] | None = None
        renamed: dict[Any, str] | None = None
        minimum = self.min_length if self.hook is None else 1
        kinds = self._key_kinds
        entry = self._entry_kind(value) if "value" in value else None
        for key, item in value.items():
            # Keys of data from outside may be secrets; the runtime's own are names.
            if not ids and type(key) is str and len(key) >= minimum:
                new_key = self._key_text(key)
                if new_key != key:
                    renamed = renamed or {}
                    renamed[key] = new_key
            if key in skip:
                continue
            kind = type(item)
            if entry is not None and key == "value" and item is not None and item != "":
                new: Any = _label(entry)
            elif kind is str:
                if not item:
                    continue
                secret = kinds.get(key, _MISS)
                if secret is _MISS:
                    secret = self.key_kind(key)
                if secret is not None:
                    new = _label(secret)
                elif len(item) < minimum:
                    continue
                else:
                    new = self.redact_text(item)
            elif kind in _SCALARS:
                continue
            else:  # tool arguments are data from outside: no identifiers in them
                new = self._value(item, ids and key != "arguments")
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        if renamed:
            out = {renamed.get(k, k): v for k, v in (out if out is not None else value).items()}
        return value if out is None else out

    def _entry_kind(self, value: dict[Any, Any]) -> str | None:
        """The kind of secret a named entry (``{"key"|"name": n, "value": v}``) holds."""
        name = value.get("key", value.get("name"))
        return self.key_kind(name) if type(name) is str else None

    def _key_text(self, key: str) -> str:
        """A dict key, redacted (cached: keys repeat)."""
        texts = self._key_texts
        found = texts.get(key)
        if found is None:
            found = self.redact_text(key)
            if found == key:
                found = key
            if len(texts) < _CACHE_LIMIT:
                texts[key] = found
        return found

    def _subclass(self, value: Any, ids: bool) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return self._value(dict(value), ids)
        if isinstance(value, tuple):
            return self._value(tuple(value), ids)
        return self._value(list(value), ids)

    def redact_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An event payload, redacted: like :meth:`redact`, except that the runtime's
        own structure is kept: field names, identifiers (:data:`IDENTIFIER_KEYS`) and
        the top-level fields that name things (:data:`PAYLOAD_IDENTIFIERS`: tools,
        models...). Tool arguments and JSON text are data from outside: everything in
        them is redacted."""
        return self._dict(payload, PAYLOAD_IDENTIFIERS, True)

    def redact_event(self, event: Event) -> Event:
        """``event`` with its payload redacted (the same object if nothing changed)."""
        payload = self.redact_payload(event.payload)
        if payload is event.payload:
            return event
        return dataclasses.replace(event, payload=payload)
