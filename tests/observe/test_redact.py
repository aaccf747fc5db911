from __future__ import annotations

import json
import re

import pytest

from tether.core import ConfigurationError, Event, Redactor
from tether.core._redact import sensitive_key_kind

from ..secrets.corpus import KEYED, ORDINARY, SECRETS, nested_json

OPENAI = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
ANTHROPIC = "sk-ant-api03-" + "x" * 40
AWS = "AKIAIOSFODNN7EXAMPLE"
GITHUB = "ghp_" + "a1B2" * 9
GITHUB_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnop"
SLACK = "xoxb-1234567890-0987654321-AbCdEfGhIjKl"
GOOGLE = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"[:35]


@pytest.mark.parametrize(("secret", "kind"), [
    (OPENAI, "openai_key"),
    ("sk-" + "Z9" * 12, "openai_key"),
    (ANTHROPIC, "anthropic_key"),
    (AWS, "aws_access_key"),
    (GITHUB, "github_token"),
    (GITHUB_PAT, "github_token"),
    (SLACK, "slack_token"),
    (GOOGLE, "google_api_key"),
])
def test_known_key_formats_are_replaced_by_kind(secret: str, kind: str) -> None:
    redactor = Redactor()
    text = f"the key is {secret}, keep it safe"
    assert redactor.redact_text(text) == f"the key is [REDACTED:{kind}], keep it safe"


def test_bearer_tokens_and_url_passwords_keep_their_context() -> None:
    redactor = Redactor()
    assert (redactor.redact_text("Authorization: Bearer eyJhbGciOi.J9abc.def-ghi")
            == "Authorization: Bearer [REDACTED:bearer_token]")
    assert (redactor.redact_text("postgres://app:s3cr3t-pw@db.internal:5432/main")
            == "postgres://app:[REDACTED:url_password]@db.internal:5432/main")
    # A URL without a password, and lookalikes inside words, are left alone.
    for text in ("https://example.com/a:b@c", "https://user@example.com/x",
                 "the task-abcdefghijklmnopqrstuvwxyz0123 id", "xAKIAIOSFODNN7EXAMPLE"):
        assert redactor.redact_text(text) == text


def test_secret_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"TETHER_SECRET_ENV": "PAYMENTS_TOKEN, DB_PASS", "PAYMENTS_TOKEN": "pt-77a1c9e3",
           "DB_PASS": "correct horse battery", "OPENAI_API_KEY": "not-a-known-format-1234",
           "SHORT": "abc"}
    redactor = Redactor.from_env(env)
    text = "pt-77a1c9e3 / correct horse battery / not-a-known-format-1234 / abc"
    assert redactor.redact_text(text) == (
        "[REDACTED:env:PAYMENTS_TOKEN] / [REDACTED:env:DB_PASS] / "
        "[REDACTED:env:OPENAI_API_KEY] / abc")
    monkeypatch.setenv("TETHER_SECRET_ENV", "PAYMENTS_TOKEN")
    monkeypatch.setenv("PAYMENTS_TOKEN", "pt-99zz0000")
    assert Redactor.from_env().redact_text("x pt-99zz0000") == "x [REDACTED:env:PAYMENTS_TOKEN]"


def test_extra_patterns_hook_and_sensitive_keys() -> None:
    redactor = Redactor.from_env(
        {"TETHER_REDACT_PATTERNS": '{"ticket": "TCK-[0-9]{6}"}'},
        patterns={"ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b")},
        hook=lambda s: s.replace("alice@example.com", "[EMAIL]"),
    )
    value = {"note": "TCK-123456 for 078-05-1120", "who": "alice@example.com",
             "password": "hunter2", "nested": [{"Api_Key": "x"}, ("api_key", 5)], "n": 3}
    assert redactor.redact(value) == {
        "note": "[REDACTED:ticket] for [REDACTED:ssn]", "who": "[EMAIL]",
        "password": "[REDACTED:password]",
        "nested": [{"Api_Key": "[REDACTED:api_key]"}, ("api_key", 5)], "n": 3}
    with pytest.raises(ConfigurationError, match="TETHER_REDACT_PATTERNS"):
        Redactor.from_env({"TETHER_REDACT_PATTERNS": "{not json"})


def test_unchanged_values_are_returned_as_they_are() -> None:
    redactor = Redactor()
    payload = {"message": {"role": "assistant", "content": "fine", "tool_calls": [
        {"id": "call_1", "name": "lookup", "arguments": '{"i": 1}'}]}, "usage": {"x": 1}}
    event = Event(run_id="r", seq=1, type="model.response", step=1, ts=0.0, payload=payload)
    assert redactor.redact(payload) is payload
    assert redactor.redact_event(event) is event
    secret = Event(run_id="r", seq=2, type="tool.result", step=1, ts=0.0,
                   payload={"call_id": "c", "content": f"key={AWS}"})
    redacted = redactor.redact_event(secret)
    assert redacted.payload == {"call_id": "c", "content": "key=[REDACTED:aws_access_key]"}
    assert secret.payload["content"] == f"key={AWS}"  # the original is not modified
    assert (redacted.seq, redacted.type, redacted.run_id) == (2, "tool.result", "r")


@pytest.mark.parametrize(("kind", "secret", "text"), SECRETS,
                         ids=[f"{k}-{i}" for i, (k, _s, _t) in enumerate(SECRETS)])
def test_every_kind_of_secret_is_caught_wherever_it_sits(kind: str, secret: str,
                                                         text: str) -> None:
    redactor = Redactor()
    placements = {
        "alone": text,
        "in prose": f"Note. {text} Thanks!",
        "in a JSON string": json.dumps({"note": text}),
        "in nested JSON text": json.dumps({"result": json.dumps({"deep": [text]})}),
        "in malformed JSON": json.dumps({"note": text})[:-2],
        "in a list": json.dumps([1, text]),
        "in a repr": repr({"args": (text,)}),
    }
    for where, placed in placements.items():
        redacted = redactor.redact_text(placed)
        assert secret not in redacted, f"{kind} {where}: {redacted!r}"
        assert f"[REDACTED:{kind}]" in redacted, f"{kind} {where}: {redacted!r}"


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_passes_untouched(text: str) -> None:
    redactor = Redactor()
    assert redactor.redact_text(text) is text
    assert redactor.redact({"content": text, "arguments": json.dumps({"q": text})}) == {
        "content": text, "arguments": json.dumps({"q": text})}


@pytest.mark.parametrize("key", [
    "password", "PASSWORD", "db_password", "dbPassword", "apiKey", "api-key", "Api-Key",
    "x-api-key", "X_API_KEY", "token", "auth_token", "accessToken", "client_secret",
    "aws_secret_access_key", "Authorization", "private_key", "credentials", "Set-Cookie",
])
def test_sensitive_key_names_whatever_their_case_and_separators(key: str) -> None:
    assert sensitive_key_kind(key) is not None
    redacted = Redactor().redact({key: "v", "n": [{key: "w"}]})
    assert "v" not in redacted.values() and redacted["n"][0][key].startswith("[REDACTED:")


@pytest.mark.parametrize("key", [
    "max_tokens", "token_count", "tokens", "input_tokens", "output_tokens", "eos_token",
    "tokenizer", "key", "keys", "primary_key", "idempotency_key", "secret_name",
    "password_hint", "bypass", "oauth", "monkey", "passage", "author",
])
def test_keys_that_are_not_secrets(key: str) -> None:
    assert sensitive_key_kind(key) is None
    value = {key: "an ordinary value 1234"}
    assert Redactor().redact(value) is value


def test_json_text_is_redacted_as_json_with_hostile_escapes() -> None:
    redactor = Redactor()
    escaped = '{"pass\\u0077ord": "x1y2z3w", "url": "https:\\/\\/u:pw-123456@h.example\\/x"}'
    text = json.loads(json.dumps(escaped))  # the escapes as a model would emit them
    out = json.loads(redactor.redact_text(text))
    assert out == {"password": "[REDACTED:password]",
                   "url": "https://u:[REDACTED:url_password]@h.example/x"}
    out = json.loads(redactor.redact_text(nested_json()))
    assert out["apiKey"] == "[REDACTED:api_key]" and out["max_tokens"] == 512
    assert out["items"][0]["Api-Key"] == "[REDACTED:api_key]"
    assert json.loads(out["items"][0]["raw"])["token"] == "[REDACTED:token]"
    for secret in KEYED.values():
        assert secret not in json.dumps(out)
    # A secret as a key name is redacted too.
    assert redactor.redact({SECRETS[0][1]: 1}) == {"[REDACTED:openai_key]": 1}


def test_identifiers_are_never_redacted_even_by_a_pattern_matching_them() -> None:
    opaque = Redactor(patterns={"opaque": r"\b[A-Za-z0-9_\-]{16,}\b"})
    key = "run_0123456789abcdef-3-0"
    payload = {"call_id": "call_0123456789abcdef", "tool": "charge_the_card_now",
               "idempotency_key": key, "arguments": {"note": "ref 0123456789abcdefXYZ"},
               "calls": [{"call_id": "call_0123456789abcdef", "idempotency_key": key}],
               "message": {"role": "assistant", "tool_calls": [
                   {"id": "call_0123456789abcdef", "name": "charge_the_card_now",
                    "arguments": json.dumps({"idempotency_key": key})}]}}
    out = opaque.redact_payload(payload)
    assert out["idempotency_key"] == key and out["calls"][0]["idempotency_key"] == key
    assert out["call_id"] == out["calls"][0]["call_id"] == "call_0123456789abcdef"
    assert out["tool"] == "charge_the_card_now"
    assert out["message"]["tool_calls"][0]["id"] == "call_0123456789abcdef"
    assert out["arguments"] == {"note": "ref [REDACTED:opaque]"}
