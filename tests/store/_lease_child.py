"""A process that drives runs as told: one JSON command per stdin line, one JSON answer
per stdout line. ``python _lease_child.py DB OWNER``."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from tether.core import Event, TetherError
from tether.store import Lease, SQLiteStore


def event(run_id: str, seq: int, kind: str, payload: dict[str, Any]) -> Event:
    return Event(run_id=run_id, seq=seq, type=kind, step=0, ts=1000.0 + seq, payload=payload)


async def main(path: str, owner: str) -> None:
    store = SQLiteStore(path)
    leases: dict[str, Lease] = {}
    print(json.dumps({"ready": True}), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        op, run_id = command["op"], command.get("run_id", "r")
        answer: dict[str, Any] = {"op": op}
        try:
            if op == "acquire":
                started = command["seq"] == 1
                kind = "run.started" if started else "run.resumed"
                payload = {"agent": "a", "task": "t"} if started else {"by": owner}
                lease = await store.acquire([event(run_id, command["seq"], kind, payload)],
                                            owner=owner, ttl_s=command["ttl"])
                leases[run_id] = lease
                answer.update(token=lease.token, expires_at=lease.expires_at)
            elif op in ("append", "append-bare"):
                await store.append(
                    [event(run_id, command["seq"], "decision", {"by": owner})],
                    lease=leases[run_id] if op == "append" else None)
            elif op == "renew":
                await store.renew(leases[run_id])
            elif op == "release":
                await store.release(leases[run_id])
        except TetherError as e:
            answer.update(error=type(e).__name__, message=str(e),
                          owner=getattr(e, "owner", None),
                          expires_at=getattr(e, "expires_at", None))
        print(json.dumps(answer), flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
