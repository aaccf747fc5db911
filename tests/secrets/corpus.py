"""Secrets of every kind Tether redacts, each in the context that identifies it, and
ordinary text that looks a little like them and must pass untouched."""

from __future__ import annotations

import json

#: (kind, secret, text holding it): the text is what a task, a tool result or an
#: answer would say; only ``secret`` must disappear from it.
SECRETS: tuple[tuple[str, str, str], ...] = (
    ("openai_key", "sk-proj-Vn3kQ8wLp2Rt6yZa9Bc4Df7Gh1Jk5Mn0",
     "use key sk-proj-Vn3kQ8wLp2Rt6yZa9Bc4Df7Gh1Jk5Mn0 for the call"),
    ("openai_key", "sk-T9xQ2mL7vR4kZ8wP1nB6cD3fG5hJ0aYe",
     "legacy sk-T9xQ2mL7vR4kZ8wP1nB6cD3fG5hJ0aYe."),
    ("anthropic_key", "sk-ant-api03-Hk8Jq2Lm9Np4Rs7Tv1Wx5Yz3Ab6Cd0Ef",
     "ANTHROPIC: sk-ant-api03-Hk8Jq2Lm9Np4Rs7Tv1Wx5Yz3Ab6Cd0Ef"),
    ("aws_access_key", "AKIAZ7QW3ERTY5UIOP2L", "id AKIAZ7QW3ERTY5UIOP2L"),
    ("access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
     "[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\n"),
    ("github_token", "ghp_R2d2C3poBb8Yoda1LukeHan5ChewieLeia77",
     "push with ghp_R2d2C3poBb8Yoda1LukeHan5ChewieLeia77"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4iLCJyb2xlIjoiYWRtaW4ifQ."
            "Qm9ndXNTaWduYXR1cmUtMTIzNDU2Nzg5MA",
     "session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4iLCJyb2xlIjoiYWRtaW4ifQ."
     "Qm9ndXNTaWduYXR1cmUtMTIzNDU2Nzg5MA; path=/"),
    ("basic_auth", "YWRtaW46czNjcjN0LWJhc2ljLXB3",
     "Authorization: Basic YWRtaW46czNjcjN0LWJhc2ljLXB3"),
    ("authorization", "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
     "curl -H 'Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b' https://api"),
    ("bearer_token", "Zm9vYmFyLXRva2VuLTEyMzQ1Ng",
     "headers: Bearer Zm9vYmFyLXRva2VuLTEyMzQ1Ng"),
    ("url_password", "p/ss#w@rd9Xq", "connect to postgres://bob:p/ss#w@rd9Xq@db.example.com/app"),
    ("url_password", "s3cr3t-pw-77", "redis://:s3cr3t-pw-77@cache.internal:6379/0"),
    ("password", "Hunter2-Zebra!", 'config {"db_password": "Hunter2-Zebra!", "port": 5432}'),
    ("api_key", "ak_live_51HqT9xYzQ", "X-Api-Key: ak_live_51HqT9xYzQ"),
    ("password", "Tr0ub4dor&3x", "DB_PASSWORD=Tr0ub4dor&3x"),
    ("token", "tok-88aa77bb66cc", "{'auth_token': 'tok-88aa77bb66cc'}"),
)

#: Secrets stored under sensitive keys of JSON objects (tool arguments, results).
KEYED = {"apiKey": "kx-41Zq9Lm2Wv8R", "token": "tk-Pq93Ld72Bn", "db_password": "pw-0Xe7Rt!",
         "Api-Key": "ak-Q1w2E3r4T5", "client_secret": "cs-Z8x7C6v5B4"}

#: Every secret value the corpus holds.
ALL_SECRETS: tuple[str, ...] = (*(s for _k, s, _t in SECRETS), *KEYED.values())

#: Ordinary text: prose, code, prices, hashes, ids, names that merely look like secrets.
ORDINARY: tuple[str, ...] = (
    "Install sk-learn-compatible-estimator-wrapper-v2 from the index.",
    "The bearer instrument is payable to whoever holds it; bearer bonds are rare now.",
    "Keep the token budget under 4096 tokens; max_tokens=1024, token_count: 532.",
    '{"max_tokens": 1024, "input_tokens": 50, "tokens": 12, "token_count": 7, "key": "id"}',
    "The password is set by the user: password: the one you chose at sign-up.",
    "Basic information about PostgreSQL and Basic authentication in general.",
    "Authorization: required. See the docs.",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "commit 9f2c1e4b7a3d5f6e8c0b1a2d3e4f5a6b7c8d9e0f, uuid 123e4567-e89b-12d3-a456-426614174000",
    "It costs $4.99 (EUR 4,59), or 1,299.00 for the year: 20% off.",
    "def login(password: str) -> None:\n    token = tokenizer.encode(text)\n"
    "    api_key = settings.API_KEY\n    secret = get_secret()\n",
    "See https://example.com/a:b@c and mail bob@example.com about http://host:8080/x.",
    "eos_token: </s>, pad_token: <pad>, secret_name: prod-db",
    "A basic question: what is a JSON Web Token (JWT) and where does eyJ come from?",
    "Skip ahead: task-abcdefghijklmnopqrstuvwxyz0123 is the id.",
)


def nested_json() -> str:
    """A JSON tool result holding secrets under keys, in text, and in nested JSON text."""
    inner = json.dumps({"token": KEYED["token"], "note": SECRETS[0][2]})
    return json.dumps({"ok": True, "apiKey": KEYED["apiKey"],
                       "items": [{"Api-Key": KEYED["Api-Key"], "raw": inner}],
                       "log": SECRETS[6][2], "max_tokens": 512})
