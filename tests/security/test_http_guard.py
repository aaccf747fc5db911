"""Guarded HTTP end to end, on loopback only (127.0.0.0/8): nothing is ever sent
anywhere else, not even to test a refusal."""

from __future__ import annotations

import ipaddress
import json
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from tether.core import ToolCall, ToolUnavailableError
from tether.models import ScriptedModel
from tether.net import (
    Credential,
    GuardedHttp,
    HttpPolicy,
    HttpRequestError,
    HttpRetryLaterError,
    URLRefusedError,
    http_tool,
)
from tether.runtime import Agent, Policy, RetryPolicy, Runner
from tether.store import SQLiteStore

from ._servers import Seen, echo, serve


def read_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def database_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.glob("tether.db*")}


def redirect_to(target: str, status: int = 302):  # type: ignore[no-untyped-def]
    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.path.startswith("/go"):
            return status, {"Location": target}, b""
        return echo(seen)
    return route


def loopback_only(*answers: str):  # type: ignore[no-untyped-def]
    """A resolver that answers from a script (each call takes the next answer, the last
    one repeats) and records the calls; it never leaves the process."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        answer = answers[min(len(calls), len(answers)) - 1]
        assert ipaddress.ip_address(answer).is_loopback
        return [answer]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


async def test_a_redirect_to_a_host_off_the_allowlist_is_refused_before_connecting() -> None:
    with serve("127.0.0.1") as other:
        with serve("127.0.0.2", redirect_to(f"{other.base}/secret")) as allowed:
            policy = HttpPolicy(allowed_hosts=frozenset({"127.0.0.2"}))
            async with GuardedHttp(policy) as http:
                ok = await http.request("GET", f"{allowed.base}/hello")
                assert ok.status == 200 and ok.json["path"] == "/hello"
                with pytest.raises(URLRefusedError) as info:
                    await http.request("GET", f"{allowed.base}/go")
                assert info.value.reason == "not_allowlisted"
                assert [c[2] for c in http.backend.connections] == ["127.0.0.2"]
        assert other.connections == 0 and other.requests == []


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}/", "http://[::ffff:127.0.0.1]:{port}/", "http://2130706433:{port}/",
    "http://127.1:{port}/", "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://localhost:{port}/",
    "http://[::1]:{port}/", "file:///etc/passwd", "http://user@127.0.0.2:{port}/",
])
async def test_redirects_are_checked_like_the_first_url(target: str) -> None:
    with serve("127.0.0.1") as other:
        location = target.format(port=other.port)
        with serve("127.0.0.2", redirect_to(location, 307)) as allowed:
            # Loopback 127.0.0.2 is allowed as a network here, not just listed.
            policy = HttpPolicy(allowed_networks=("127.0.0.2/32",))
            async with GuardedHttp(policy) as http:
                with pytest.raises(URLRefusedError):
                    await http.request("GET", f"{allowed.base}/go")
            assert len(allowed.requests) == 1
        assert other.connections == 0


async def test_a_name_resolving_to_loopback_is_refused_unless_its_network_is_allowed() -> None:
    with serve("127.0.0.1") as server:
        resolve = loopback_only("127.0.0.1")
        url = f"http://api.test:{server.port}/"
        async with GuardedHttp(HttpPolicy(allowed_hosts=frozenset({"api.test"})),
                               resolver=resolve) as http:
            with pytest.raises(URLRefusedError) as info:
                await http.request("GET", url)
            assert info.value.reason == "loopback"
        assert server.connections == 0
        policy = HttpPolicy(allowed_hosts=frozenset({"api.test"}),
                            allowed_networks=("127.0.0.1/32",))
        async with GuardedHttp(policy, resolver=resolve) as http:
            result = await http.request("GET", url)
        assert result.status == 200 and server.requests[0].headers["host"] == \
            f"api.test:{server.port}"


async def test_a_second_resolution_cannot_change_the_address_connected_to() -> None:
    with serve("127.0.0.1") as attacker, serve("127.0.0.2") as checked:
        # First answer passes the check; every later one points elsewhere.
        resolve = loopback_only("127.0.0.2", "127.0.0.1")
        policy = HttpPolicy(allowed_networks=("127.0.0.2/32",))
        async with GuardedHttp(policy, resolver=resolve) as http:
            result = await http.request("GET", f"http://rebind.test:{checked.port}/x")
            assert result.status == 200
            assert resolve.calls == ["rebind.test"]  # type: ignore[attr-defined]
            # The next request resolves again, to a refused address: refused, even
            # though a connection to the host is still open in the pool.
            with pytest.raises(URLRefusedError):
                await http.request("GET", f"http://rebind.test:{checked.port}/y")
        assert attacker.connections == 0
        assert [r.path for r in checked.requests] == ["/x"]


async def test_connections_without_a_checked_pin_are_refused() -> None:
    with serve("127.0.0.1") as server:
        async with GuardedHttp(HttpPolicy(allowed_networks=("127.0.0.0/8",))) as http:
            # Sending through the client underneath, around the checks, finds no pin.
            with pytest.raises(URLRefusedError) as info:
                await http._client.get(f"{server.base}/")
            assert info.value.reason == "unpinned"
        assert server.connections == 0


async def test_methods_headers_and_idempotency_key() -> None:
    with serve("127.0.0.2") as server:
        policy = HttpPolicy(allowed_hosts=frozenset({"127.0.0.2"}),
                            allowed_methods=frozenset({"GET", "POST"}),
                            idempotency_header="X-Request-Key")
        async with GuardedHttp(policy) as http:
            result = await http.request("POST", f"{server.base}/orders", json_body={"n": 1},
                                        idempotency_key="run-1-2")
            assert result.json["headers"]["x-request-key"] == "run-1-2"
            assert json.loads(result.json["body"]) == {"n": 1}
            got = await http.request("GET", f"{server.base}/orders", idempotency_key="k")
            assert "x-request-key" not in got.json["headers"]
            with pytest.raises(URLRefusedError):
                await http.request("DELETE", f"{server.base}/orders")
            for bad in ({"Host": "evil.com"}, {"X-A": "v\r\nX-Injected: 1"},
                        {"Bad Name": "v"}, {"Transfer-Encoding": "chunked"}):
                with pytest.raises(URLRefusedError):
                    await http.request("GET", f"{server.base}/", headers=bad)
        assert len(server.requests) == 2


async def test_429_with_retry_after_is_retryable_and_the_breaker_opens() -> None:
    def busy(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        return 429, {"Retry-After": "7"}, b"slow down"

    now = [0.0]
    with serve("127.0.0.2", busy) as server:
        policy = HttpPolicy(allowed_hosts=frozenset({"127.0.0.2"}), breaker_threshold=3,
                            breaker_reset_s=30)
        async with GuardedHttp(policy, clock=lambda: now[0]) as http:
            for _ in range(3):
                with pytest.raises(HttpRetryLaterError) as info:
                    await http.request("GET", f"{server.base}/")
                assert info.value.retryable and info.value.retry_after == 7
            with pytest.raises(ToolUnavailableError):
                await http.request("GET", f"{server.base}/")
            assert len(server.requests) == 3
            now[0] = 31.0  # half-open: one probe goes through
            with pytest.raises(HttpRetryLaterError):
                await http.request("GET", f"{server.base}/")
            assert len(server.requests) == 4


async def test_bodies_are_capped_and_typed(tmp_path: Path) -> None:
    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.path == "/big":
            return 200, {"Content-Type": "text/plain"}, b"a" * 50_000
        if seen.path == "/bin":
            return 200, {"Content-Type": "application/octet-stream"}, bytes(range(256)) * 4
        return 200, {"Content-Type": "application/json"}, b"not json"

    with serve("127.0.0.2", route) as server:
        policy = HttpPolicy(allowed_hosts=frozenset({"127.0.0.2"}), max_text_chars=1000,
                            max_response_bytes=20_000)
        async with GuardedHttp(policy, store_dir=tmp_path) as http:
            big = await http.request("GET", f"{server.base}/big")
            assert big.truncated and big.size == 20_000 and len(big.text or "") == 1000
            assert any("cut" in note for note in big.notes)
            binary = await http.request("GET", f"{server.base}/bin")
            assert binary.text is None and binary.body_ref and binary.stored_at
            assert read_bytes(binary.stored_at) == bytes(range(256)) * 4
            bad = await http.request("GET", f"{server.base}/json")
            assert bad.json is None and bad.text == "not json"


async def test_credentials_are_injected_and_never_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-" + "7f3a9c" * 6
    monkeypatch.setenv("TETHER_TEST_API_TOKEN", secret)
    with serve("127.0.0.1") as other:
        with serve("127.0.0.2", redirect_to(f"{other.base}/stolen")) as api:
            policy = HttpPolicy(
                allowed_hosts=frozenset({"127.0.0.2", "127.0.0.1"}),
                credentials=(Credential(host="127.0.0.2", header="Authorization",
                                        env="TETHER_TEST_API_TOKEN", prefix="Bearer "),),
            )
            async with GuardedHttp(policy) as http:
                fetch = http_tool(http)
                model = ScriptedModel([
                    ToolCall.of("http_request", url=f"{api.base}/echo",
                                headers={"Authorization": "Bearer model-made-this-up"},
                                call_id="c1"),
                    ToolCall.of("http_request", url=f"{api.base}/go", call_id="c2"),
                    "done",
                ])
                agent = Agent(name="api_caller", model=model, tools=[fetch])
                store = SQLiteStore(tmp_path / "tether.db")
                result = await Runner(store).run(agent, "call the API")
                events = await store.read(result.run_id)
                await store.close()
    # The server got the configured credential, not the model's header.
    assert api.requests[0].headers["authorization"] == f"Bearer {secret}"
    # The echo came back to the model with the secret redacted.
    first = next(e for e in events if e.type == "tool.result")
    # (the tool's own "credential redacted" note is itself caught by the journal's
    # bearer-token rule, so what is stored reads [REDACTED:...] there)
    assert secret not in json.dumps(first.payload) and "[REDACTED" in \
        json.dumps(first.payload)
    # The redirect to another host did not carry the credential there.
    assert other.requests and "authorization" not in other.requests[0].headers
    # Not one byte of the secret anywhere in the database files.
    files = database_files(tmp_path)
    assert files
    for name, data in files.items():
        assert secret.encode() not in data, name


async def test_a_429_is_retried_by_the_runtime(tmp_path: Path) -> None:
    answers = iter([429, 200])

    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        status = next(answers)
        return status, {"Retry-After": "0", "Content-Type": "text/plain"}, b"hello"

    with serve("127.0.0.2", route) as server:
        async with GuardedHttp(HttpPolicy(allowed_hosts=frozenset({"127.0.0.2"}))) as http:
            agent = Agent(name="a", tools=[http_tool(http)],
                          model=ScriptedModel([ToolCall.of("http_request", url=server.base),
                                               "ok"]),
                          policy=Policy(tool_retry=RetryPolicy(max_attempts={"transient": 3},
                                                               base_delay_s=0.01)))
            store = SQLiteStore(tmp_path / "tether.db")
            result = await Runner(store).run(agent, "go")
            events = await store.read(result.run_id)
            await store.close()
    assert [e.type for e in events].count("retry") == 1
    assert next(e for e in events if e.type == "tool.result").payload["content"].count("hello")
    assert len(server.requests) == 2


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` made with the openssl command line."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is missing")
async def test_tls_is_verified_against_the_host_name_not_the_pinned_address(
    tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path, "api.test")
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    names: list[str | None] = []

    def record_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        names.append(name)

    server_side.sni_callback = record_sni  # type: ignore[assignment]
    client_side = ssl.create_default_context(cafile=str(cert))
    with serve("127.0.0.2", tls=server_side) as server:
        policy = HttpPolicy(allowed_networks=("127.0.0.2/32",))
        async with GuardedHttp(policy, resolver=loopback_only("127.0.0.2"),
                               verify=client_side) as http:
            ok = await http.request("GET", f"https://api.test:{server.port}/tls")
            assert ok.status == 200 and ok.json["path"] == "/tls"
            assert names == ["api.test"]  # SNI is the host name, not 127.0.0.2
            # Same address, another name: the certificate does not match, nothing sent.
            with pytest.raises(HttpRequestError):
                await http.request("GET", f"https://other.test:{server.port}/no")
    assert [r.path for r in server.requests] == ["/tls"]
