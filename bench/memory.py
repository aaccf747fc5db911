"""Memory figures: a 1,000-step long-horizon workload (tether's context vs the full
history), hybrid search and writes at 10,000 and 100,000 memories, context build
time, embedder throughput, and the token estimate's error.

Run with no arguments; prints one JSON line per figure and writes
bench/results/memory.jsonl. The scale runs use synthetic clustered vectors (embedding
100,000 texts on 2 shared cores would take most of the 10 minutes); the long-horizon
workload embeds every fact and question with the default embedder.
"""

from __future__ import annotations

import base64
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, write_results  # noqa: E402

from tether.core import Message, ToolCall  # noqa: E402
from tether.memory import (  # noqa: E402
    BuiltContext,
    ContextBuilder,
    EstimateTokenCounter,
    MiniLMEmbedder,
    Namespace,
    SQLiteMemoryStore,
    message_tokens,
)

LINES: list[dict[str, Any]] = []
BUDGET = 8000
STEPS = 1000
ATTRS = ["owner", "deadline", "budget", "status", "region", "database", "version",
         "priority", "contact", "location"]
SYLLABLES = ["ka", "lo", "mir", "ven", "tor", "sa", "bel", "qui", "dran", "ox", "pel", "zu",
             "ri", "nam", "gor", "lis", "fen", "ta", "vo", "hel"]


def out(metric: str, value: float, unit: str, **config: Any) -> None:
    load = round(os.getloadavg()[0], 1)  # 2 cores shared with other work: say how busy
    LINES.append(emit(metric, value, unit, **config, load_avg_1m=load))


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


# -- the long-horizon workload ---------------------------------------------------------


def _names(rng: random.Random, n: int) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        names.add("".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize())
    return sorted(names)


def _value(rng: random.Random, attr: str) -> str:
    return {
        "owner": lambda: rng.choice(["Ada", "Bob", "Chen", "Dana", "Eli", "Fay"]) + " "
        + rng.choice(["Moreau", "Silva", "Okafor", "Berg", "Kowalski"]),
        "deadline": lambda: f"{rng.randint(1, 28)} {rng.choice(['March', 'June', 'October'])}",
        "budget": lambda: f"{rng.randint(10, 990)},000 euros",
        "status": lambda: rng.choice(["on hold", "green", "at risk", "blocked", "shipped"])
        + f" since week {rng.randint(1, 52)}",
        "region": lambda: rng.choice(["eu-west", "us-east", "ap-south"]) + f"-{rng.randint(1, 9)}",
        "database": lambda: f"db-{rng.randint(1, 99)}",
        "version": lambda: f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
        "priority": lambda: f"P{rng.randint(0, 4)} rank {rng.randint(1, 500)}",
        "contact": lambda: f"ext {rng.randint(1000, 9999)}",
        "location": lambda: rng.choice(["Lyon", "Turin", "Porto", "Ghent", "Bergen"])
        + f" office floor {rng.randint(1, 12)}",
    }[attr]()


Subject = tuple[str, str]  # (project, attribute)


def _schedule(
    rng: random.Random, subjects: list[Subject],
) -> tuple[dict[int, list[tuple[str, str, str]]], dict[Subject, tuple[str, int]]]:
    """Which facts each step's log page states, and each subject's value in force at the
    end with the step that wrote it: each subject first appears at a random step; 30%
    are restated later, 25% updated."""
    events: dict[int, list[tuple[str, str, str]]] = {}
    current: dict[tuple[str, str], tuple[str, int]] = {}
    for subject in subjects:
        step = rng.randrange(STEPS - 50)
        value = _value(rng, subject[1])
        events.setdefault(step, []).append((subject[0], subject[1], value))
        current[subject] = (value, step)
        if rng.random() < 0.3:
            events.setdefault(rng.randrange(step + 1, STEPS), []).append(
                (subject[0], subject[1], value))
        if rng.random() < 0.25:
            later = rng.randrange(step + 1, STEPS)
            new = _value(rng, subject[1])
            events.setdefault(later, []).append((subject[0], subject[1], new))
            if later > current[subject][1]:
                current[subject] = (new, later)
    for step in sorted(events):  # the value in force at the end: the last one written
        for n, a, v in events[step]:
            current[(n, a)] = (v, step)
    return events, current


def _shared_prefix(previous: tuple[Message, ...], messages: tuple[Message, ...]) -> int:
    """How many leading messages of ``messages`` repeat ``previous``."""
    shared = 0
    for a_msg, b_msg in zip(previous, messages, strict=False):
        if a_msg != b_msg:
            break
        shared += 1
    return shared


def long_horizon(embedder: MiniLMEmbedder, tmp: Path) -> None:
    rng = random.Random(42)
    names = _names(rng, 50)
    subjects = [(n, a) for n in names for a in ATTRS]  # 500 distinct subjects
    rng.shuffle(subjects)
    events, current = _schedule(rng, subjects)

    store = SQLiteMemoryStore(tmp / "long.db", embedder=embedder)
    ns = Namespace(agent="analyst", user="ops", thread="t1", run="r1")
    builder = ContextBuilder(budget=BUDGET)
    counter = EstimateTokenCounter()
    history: list[Message] = []
    naive_tokens = message_tokens(Message.system("x"), counter.count)
    tether_tokens: list[int] = []
    naive: list[int] = []
    build_ms: list[float] = []
    build_cpu: list[float] = []
    reuse: list[float] = []
    previous: tuple[Message, ...] = ()
    instructions = "You track projects. Answer from the logs and memories."
    task = "Read the project logs page by page and keep track of every project's facts."
    for step in range(STEPS):
        facts = events.get(step, [])
        call = ToolCall.of("read_log", call_id=f"call_{step}", page=step)
        lines = [f"The {a} of project {n} is {v}." for n, a, v in facts]
        filler = rng.choice([2, 10, 40, 200])
        body = "\n".join(lines + [f"log page {step} line {i}: routine check ok" for i in
                                  range(filler)])
        turn = [Message.assistant(None, (call,)), Message.tool(call, body)]
        history += turn
        naive_tokens += sum(message_tokens(m, counter.count) for m in turn)
        if facts:  # the agent remembers each fact it read (as remember calls would)
            vectors = embedder.embed(lines)
            for (n, a, _), line, v in zip(facts, lines, vectors, strict=True):
                store.write(store.prepare(line, namespace=ns, key=f"{n}.{a}", vector=v))
        query = lines[0] if lines else f"log page {step}"
        hits = store.search_sync(query, scope=ns, k=5)
        t0, c0 = time.perf_counter(), time.thread_time()
        built = builder.build(instructions=instructions, task=task, history=history,
                              memories=hits)
        build_ms.append((time.perf_counter() - t0) * 1000)
        build_cpu.append((time.thread_time() - c0) * 1000)
        tether_tokens.append(built.tokens)
        naive.append(naive_tokens + message_tokens(Message.user(task), counter.count))
        body_msgs = built.messages[:-1] if hits else built.messages
        if previous:
            reuse.append(_shared_prefix(previous, built.messages) / len(previous))
        previous = body_msgs
        if (step + 1) % 100 == 0:
            window = slice(step - 99, step + 1)
            for mode, series in (("tether", tether_tokens), ("naive", naive)):
                out("prompt_tokens_max", max(series[window]), "tokens", mode=mode, step=step + 1,
                    budget=BUDGET)
                out("prompt_tokens_median", statistics.median(series[window]), "tokens",
                    mode=mode, step=step + 1, budget=BUDGET)
    assert max(tether_tokens) <= BUDGET
    out("prefix_reuse_median", statistics.median(reuse), "fraction", steps=STEPS,
        note="share of the previous prompt (without its memories) that the next repeats")
    out("context_build_ms_p95", p95(build_ms), "ms", memories=store.count(), steps=STEPS,
        workload="long_horizon")
    out("context_build_cpu_ms_p95", p95(build_cpu), "ms", memories=store.count(),
        steps=STEPS, workload="long_horizon")
    out("memories_per_fact", store.count(ns) / len(current), "ratio",
        stored_current=store.count(ns), distinct_current_facts=len(current),
        stored_with_history=store.count(ns, history=True))

    _evidence_recall(rng, subjects, current, embedder, store, ns, partial(
        builder.build, instructions=instructions, task=task), history)
    store.close()


def _evidence_recall(
    rng: random.Random, subjects: list[Subject], current: dict[Subject, tuple[str, int]],
    embedder: MiniLMEmbedder, store: SQLiteMemoryStore, ns: Namespace,
    build: Callable[..., BuiltContext], history: list[Message],
) -> None:
    """200 questions whose evidence came early, in the middle or recently: the share
    whose current value is in the prompt built to answer them."""
    depth_of = {s: ("early" if step < STEPS / 3 else "middle" if step < 2 * STEPS / 3
                    else "recent") for s, (_, step) in current.items()}
    by_depth: dict[str, list[tuple[str, str]]] = {"early": [], "middle": [], "recent": []}
    for s in subjects:
        by_depth[depth_of[s]].append(s)
    questions = [s for d in ("early", "middle", "recent")
                 for s in rng.sample(by_depth[d], min(67, len(by_depth[d])))][:200]
    found: dict[str, list[bool]] = {"early": [], "middle": [], "recent": []}
    qvectors = embedder.embed([f"What is the {a} of project {n}?" for n, a in questions])
    for (n, a), qv in zip(questions, qvectors, strict=True):
        question = f"What is the {a} of project {n}?"
        hits = store.search_sync(question, scope=ns, k=5, vector=qv)
        built = build(history=[*history, Message.user(question)], memories=hits)
        value = current[(n, a)][0]
        needle = f"The {a} of project {n} is {value}."
        found[depth_of[(n, a)]].append(any(needle in (m.content or "")
                                           for m in built.messages))
    everything = [x for v in found.values() for x in v]
    for depth, values in found.items():
        out("evidence_recall", sum(values) / len(values), "fraction", depth=depth,
            questions=len(values))
    out("evidence_recall", sum(everything) / len(everything), "fraction", depth="all",
        questions=len(everything))


# -- scale -----------------------------------------------------------------------------

WORDS = ("alpha beta gamma delta server region budget owner deadline invoice customer "
         "order shipment warehouse ticket release version database backup network "
         "latency error deploy contract payment refund account profile session").split()


def base_vectors(embedder: MiniLMEmbedder) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Real embeddings of 600 fact sentences and 200 questions, the seeds of the
    scale runs' vectors."""
    rng = random.Random(11)
    names = _names(rng, 120)
    facts = [f"The {a} of project {rng.choice(names)} is {_value(rng, a)}."
             for a in (rng.choice(ATTRS) for _ in range(600))]
    questions = [f"What is the {rng.choice(ATTRS)} of project {rng.choice(names)}?"
                 for _ in range(200)]
    return embedder.embed(facts), embedder.embed(questions), facts


def scale(n: int, tmp: Path, embedder: MiniLMEmbedder,
          base: tuple[np.ndarray, np.ndarray, list[str]]) -> None:
    """Vectors: each a random mix of three real fact embeddings plus a little noise
    (so they keep real embeddings' shape); texts: a fact sentence plus random words
    and a unique code."""
    rng = np.random.default_rng(n)
    pyrng = random.Random(n)
    dim = embedder.dim
    seeds, questions, facts = base
    pick = rng.integers(len(seeds), size=(n, 3))
    weights = rng.dirichlet([1.0, 1.0, 1.0], size=n).astype(np.float32)
    vecs = np.einsum("nk,nkd->nd", weights, seeds[pick]).astype(np.float32)
    vecs += 0.02 * rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = SQLiteMemoryStore(tmp / f"scale{n}.db", embedder=embedder, synchronous="NORMAL")
    users = [f"user{i}" for i in range(20)]
    texts = [f"{facts[pick[i, 0]]} {' '.join(pyrng.sample(WORDS, 3))} code "
             f"K{pyrng.randrange(10**6)}" for i in range(n)]
    load = n - 500
    t0 = time.perf_counter()
    for start in range(0, load, 2000):
        batch = range(start, min(load, start + 2000))
        store.write_many([store.prepare(texts[i], vector=vecs[i], namespace=Namespace(
            agent="bench", user=users[i % len(users)])) for i in batch])
    load_s = time.perf_counter() - t0
    write_ms, write_cpu = [], []
    for i in range(load, n):
        item = store.prepare(texts[i], vector=vecs[i],
                             namespace=Namespace(agent="bench", user=users[i % len(users)]))
        t, c = time.perf_counter(), time.thread_time()
        store.write(item)
        write_ms.append((time.perf_counter() - t) * 1000)
        write_cpu.append((time.thread_time() - c) * 1000)
    out("write_ms_p95", p95(write_ms), "ms", memories=n, synchronous="NORMAL",
        note="one transaction per write, dedup checks included, embedding excluded")
    out("write_cpu_ms_p95", p95(write_cpu), "ms", memories=n,
        note="CPU time of the writing thread: the wall figure under a loaded machine")
    out("bulk_load_s", load_s, "s", memories=n, batch=2000,
        note="write_many: exact duplicates and keys checked, similarity checks off")
    scope = Namespace(agent="bench")
    search_ms, search_cpu, overlap = [], [], []
    for q in range(200):  # latency on 200 queries; recall against exact search on 50
        target = int(rng.integers(n))
        qv = questions[q % len(questions)]
        words = texts[target].split()
        query = " ".join([*pyrng.sample(words[:-2], 3), words[-1]])
        t, c = time.perf_counter(), time.thread_time()
        store.search_sync(query, scope=scope, k=10, vector=qv)
        search_ms.append((time.perf_counter() - t) * 1000)
        search_cpu.append((time.thread_time() - c) * 1000)
        if q % 4:
            continue
        approx = store.search_sync(query, scope=scope, k=10, vector=qv, mode="vector",
                                   min_similarity=-1.0)
        want = {h for h, _ in store.exact_search(qv, scope=scope, k=10)}
        got = {h.memory.handle for h in approx}
        overlap.append(len(want & got) / 10)
    out("recall_ms_p95", p95(search_ms), "ms", memories=n, k=10, mode="hybrid",
        note="embedding of the query excluded")
    out("recall_cpu_ms_p95", p95(search_cpu), "ms", memories=n, k=10, mode="hybrid",
        note="CPU time of the searching thread (numpy may add its own threads)")
    out("recall_at_10_vs_exact", float(np.mean(overlap)), "fraction", memories=n,
        queries=len(overlap),
        note="vector leg (sign-bit prefilter + float rescoring) vs exact float top 10 "
        "(sqlite-vec vec_distance_cosine over every vector in scope)",
        vectors="mixes of 3 real MiniLM fact embeddings + noise; real question queries")
    builder = ContextBuilder(budget=BUDGET)
    history: list[Message] = []
    build_ms, build_cpu = [], []
    for step in range(300):
        call = ToolCall.of("lookup", call_id=f"c{step}", i=step)
        history += [Message.assistant(None, (call,)),
                    Message.tool(call, texts[step] * pyrng.choice([1, 5, 40]))]
        hits = store.search_sync(texts[step], scope=scope, k=10, vector=vecs[step])
        t, c = time.perf_counter(), time.thread_time()
        builder.build(instructions="Answer.", task="Look things up.", history=history,
                      memories=hits)
        build_ms.append((time.perf_counter() - t) * 1000)
        build_cpu.append((time.thread_time() - c) * 1000)
    out("context_build_ms_p95", p95(build_ms), "ms", memories=n, steps=300, k=10)
    out("context_build_cpu_ms_p95", p95(build_cpu), "ms", memories=n, steps=300, k=10)
    store.close()


# -- embedder and token counts ------------------------------------------------------------


def embedder_throughput(embedder: MiniLMEmbedder) -> None:
    rng = random.Random(3)
    texts = [f"The {rng.choice(ATTRS)} of project {rng.choice(SYLLABLES)}{i} is "
             f"{rng.randint(0, 10**6)}." for i in range(512)]
    embedder.embed(texts[:32])
    t = time.perf_counter()
    embedder.embed(texts)
    out("embed_texts_per_s", len(texts) / (time.perf_counter() - t), "texts/s",
        model=embedder.name, batch=embedder.batch_size, texts=len(texts))


def token_estimate_error() -> None:
    try:
        from tether.memory import LlamaTokenCounter

        real = LlamaTokenCounter()
    except Exception as e:  # noqa: BLE001
        print(f"skipping token_estimate_error: {e}", file=sys.stderr)
        return
    est = EstimateTokenCounter()
    rng = random.Random(5)
    samples = []
    for i in range(400):
        kind = i % 5
        if kind == 0:
            budget = _value(rng, "budget")
            samples.append(f"The {rng.choice(ATTRS)} of project Kalomir is {budget}.")
        elif kind == 1:
            samples.append("\n".join(f"log page {i} line {j}: routine check ok"
                                     for j in range(rng.randint(1, 40))))
        elif kind == 2:
            samples.append(f'{{"page": {i}, "filter": ["a", "b"], "limit": {i * 7}}}')
        elif kind == 3:
            samples.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 300))))
        else:
            samples.append("Ünïcödé café — naïve résumé 😀 " * rng.randint(1, 10))
    errors = []
    under = 0
    for s in samples:
        r, e = real.count(s), est.count(s)
        errors.append((e - r) / max(r, 1))
        under += e < r
    out("token_estimate_error_mean", float(np.mean(errors)), "fraction", reference=real.name,
        samples=len(samples), note="(estimate - real) / real; positive: over-counts")
    out("token_estimate_error_p95_abs", float(np.percentile(np.abs(errors), 95)), "fraction",
        reference=real.name, samples=len(samples))
    out("token_estimate_undercount_rate", under / len(samples), "fraction",
        reference=real.name, samples=len(samples))
    hostile = _hostile_texts(rng)
    ratios = {name: est.count(text) / max(1, real.count(text)) for name, text in hostile}
    for name, ratio in ratios.items():
        out("token_estimate_ratio", ratio, "estimate/real", text=name, reference=real.name,
            note="hostile text: below 1 would under-count")
    out("token_estimate_ratio_min", min(ratios.values()), "estimate/real",
        reference=real.name, samples=len(ratios), note="hostile texts; >= 1: an upper bound")


def _hostile_texts(rng: random.Random) -> list[tuple[str, str]]:
    """Text the estimate's shape rules must not under-count (review of issue 18)."""
    blob = rng.randbytes(1200)
    return [
        ("base64", base64.b64encode(blob).decode()),
        ("hex", blob.hex()),
        ("uuids", " ".join(str(uuid.UUID(bytes=blob[i:i + 16])) for i in range(0, 640, 16))),
        ("zalgo", "h\u0338\u031b\u0330e\u0335\u0333\u035dl\u0336\u0330\u0308 " * 40),
        ("korean", "안녕하세요 오늘 날씨가 정말 좋네요 우리 같이 산책 갈까요 " * 10),
        ("chinese", "我们今天去公园散步，天气非常好，大家都很开心。" * 10),
        ("japanese", "今日はとても良い天気ですね。カタカナもテストします。" * 10),
        ("thai", "สวัสดีครับ วันนี้อากาศดีมาก " * 10),
        ("devanagari", "नमस्ते आप कैसे हैं आज मौसम अच्छा है " * 10),
        ("hebrew_points", "שָׁלוֹם עֲלֵיכֶם " * 20),
        ("emoji", "🔑🎉👍🏽🇫🇷" * 50),
        ("tabs", "\t" * 3000),
        ("spaces", " " * 3000),
        ("mixed_blanks", " \t \n" * 300),
        ("crlf", "a\r\nb\r\n" * 200),
        ("tab_code", "def f(x):\n\t\treturn x\n" * 40),
        ("punctuation", "!@#$%^&*()_+-=[]{}|;:,.<>?/~`" * 20),
        ("math", "∀x∈ℝ: x²≥0 ⇒ √(x²)=|x| ∑∫∂ " * 10),
    ]


def main() -> None:
    embedder = MiniLMEmbedder()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        embedder_throughput(embedder)
        token_estimate_error()
        long_horizon(embedder, tmp)
        base = base_vectors(embedder)
        for n in (10_000, 100_000):
            scale(n, tmp, embedder, base)
    write_results(__file__, LINES)


if __name__ == "__main__":
    main()
