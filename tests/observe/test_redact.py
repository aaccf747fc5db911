from __future__ import annotations

import re
import time

import pytest

from tether.core import ConfigurationError, Event, Redactor

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


def test_redaction_is_cheap_for_ordinary_events() -> None:
    redactor = Redactor.from_env({"OPENAI_API_KEY": OPENAI, "ANTHROPIC_API_KEY": ANTHROPIC})
    event = Event(run_id="run_x", seq=3, type="model.response", step=2, ts=1.0, payload={
        "message": {"role": "assistant", "tool_calls": [
            {"id": "call_2_0", "name": "lookup", "arguments": '{"i": 3}'}]},
        "usage": {"input_tokens": 50, "output_tokens": 4, "requests": 1},
        "provider": "scripted", "model": "scripted", "finish_reason": "tool_calls"})
    big = Event(run_id="run_x", seq=4, type="tool.result", step=2, ts=1.0, payload={
        "call_id": "call_2_0", "tool": "lookup", "content": ("record 000003 " * 100)[:1000]})
    for e in (event, big):
        redactor.redact_event(e)
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        redactor.redact_event(event)
        redactor.redact_event(big)
    per_pair_us = (time.perf_counter() - started) / rounds * 1e6
    # Measured at about 10 µs for the pair; a generous bound for shared machines.
    assert per_pair_us < 200
