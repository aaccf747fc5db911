"""Child process for test_crash: writes memories until it is SIGKILLed.

Usage: python -m tests.memory.crash_writer DB MODE, MODE = ``loop`` (write as fast as
possible) or ``hold`` (write one memory inside an open transaction, say so, and wait).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from tether.memory import MiniLMEmbedder, Namespace, SQLiteMemoryStore

NS = Namespace(agent="crash")


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    store = SQLiteMemoryStore(path, embedder=MiniLMEmbedder())  # never loaded: vectors given
    rng = np.random.default_rng()
    if mode == "hold":
        item = store.prepare("held inside a transaction", namespace=NS,
                             vector=rng.standard_normal(384).astype(np.float32))
        db = store.connection
        db.execute("BEGIN IMMEDIATE")
        store.write_in(db, item)
        print(f"inside {item.handle}", flush=True)
        time.sleep(60)
        return
    i = 0
    while True:
        text = f"fact {i}: sensor {rng.integers(1 << 30)} reads {rng.random():.6f} " * 20
        store.write(store.prepare(text, namespace=NS, key=f"k{i % 50}",
                                  vector=rng.standard_normal(384).astype(np.float32)))
        if i == 0:
            print("writing", flush=True)
        i += 1


if __name__ == "__main__":
    main()
