"""7. The daily fan-out at institute scale: 100,000 people over 2,000 candidates, against a
single Redis and against a Redis Cluster, and how its time and memory grow from 10,000.

`paperbot bench --only fanout --people 100000 [--json]`. Redis: `REDIS_URL` when set (a single
server or any node of a cluster); otherwise both the bench's own single server (`bench_redis`:
an embedded Valkey, or PAPERBOT_BENCH_REDIS) and a local cluster of three embedded Valkey
primaries (`testkit.redis_cluster`). Each (Redis, number of people) runs in a
process of its own, since a peak resident set is a process's: it loads a synthetic corpus
(20,000 papers, random unit vectors) into its index, writes the people (as `fanout.populate`:
1-3 topics, a few liked, saved and disliked papers, 20 of the candidates shown), then times
`Recommender.picks_for_many` for all of them at once (the median of 3 runs), as the scheduler
calls it when everyone posts at the same time (after a warm-up on 100 of them: the topic expansions and the
background sample, computed once a process). Its peak RSS (VmHWM) is read after; the RSS
before the fan-out (model and index loaded, people written) is the floor the fan-out's own
memory is measured against.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from .common import REPO, Row, log

CORPUS = 20_000
CANDIDATES = 2_000
PREFIX = "bench-scale:"


def _rss_mb(field: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(url: str, people_n: int, reps: int) -> dict[str, Any]:
    """One measurement (the median of `reps` runs), in this process: the corpus is in Redis
    under PREFIX already."""
    from recommender.embedder import Embedder
    from recommender.service import Recommender
    from recommender.store import PaperStore, redis_client

    from . import fanout

    rec = Recommender(PaperStore(redis_client(url), PREFIX), Embedder())
    rec.refresh()
    candidates = list(rec.index.ids[-CANDIDATES:])
    started = time.perf_counter()
    people = fanout.populate(rec, people_n, candidates)
    written_s = time.perf_counter() - started
    try:
        rec.picks_for_many(people[:100], k=5, candidates=candidates)   # once-a-process work
        rss_before = _rss_mb("VmRSS")
        runs = []
        for _ in range(reps):
            picks = None   # (the last run's picks are freed before the next is made)
            started = time.perf_counter()
            picks = rec.picks_for_many(people, k=5, candidates=candidates)
            runs.append(time.perf_counter() - started)
        seconds = sorted(runs)[len(runs) // 2]
        peak = _rss_mb("VmHWM")
        assert len(picks) == people_n and all(len(p) == 5 for p in picks.values())
    finally:
        fanout.cleanup(rec)
    return {"people": people_n, "fanout_s": round(seconds, 3), "peak_rss_mb": round(peak, 1),
            "rss_before_mb": round(rss_before, 1), "write_people_s": round(written_s, 1),
            "per_person_ms": round(seconds / people_n * 1000, 4), "runs_s": [round(x, 3) for x in runs]}


@contextlib.contextmanager
def _redises() -> Iterator[list[tuple[str, str]]]:
    """(name, url) of each Redis to measure against."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield [("REDIS_URL", url)]
        return
    from .common import bench_redis

    with contextlib.ExitStack() as stack:
        _, single, _ = stack.enter_context(bench_redis(persistent=False))
        found = [("single server", single)]
        try:
            from testkit.redis_cluster import LocalCluster
        except ImportError:
            log("fan-out at scale: the testkit package is not installed: no local cluster")
        else:
            cluster = stack.enter_context(LocalCluster())
            found.append(("Valkey Cluster, 3 primaries", cluster.url))
        yield found


def _store_corpus(url: str, corpus_n: int) -> None:
    from recommender.embedder import Embedder
    from recommender.service import Recommender
    from recommender.store import PaperStore, redis_client

    from .common import QUERIES, store_synthetic_corpus, synthetic_papers, synthetic_vectors

    _delete_corpus(url)   # what a run that was cut off left
    embedder = Embedder()
    client = redis_client(url)
    rec = Recommender(PaperStore(client, PREFIX), embedder)
    store_synthetic_corpus(rec, synthetic_papers(corpus_n, seed=2, words=20),
                           synthetic_vectors(corpus_n, embedder.dim, seed=2))
    rec.vector_cache.vectors(sorted(QUERIES))   # the topics' vectors, embedded once, cached
    client.close()


def _delete_corpus(url: str) -> None:
    from recommender.store import redis_client

    from .common import delete_prefix

    client = redis_client(url)
    delete_prefix(client, PREFIX)
    client.close()


def _measure(url: str, people_n: int, reps: int) -> dict[str, Any]:
    """`child` in a process of its own."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "bench.fanout_scale", url, str(people_n), str(reps)],
                          cwd=str(REPO), env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"fan-out of {people_n:,} people failed: "
                           f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(people_n: int, base_n: int = 10_000, corpus_n: int = CORPUS,
        reps: int = 3) -> tuple[list[Row], dict[str, Any]]:
    """The fan-out at `base_n` and at `people_n` people, on each Redis (the median of `reps`)."""
    sizes = sorted({min(base_n, people_n), people_n})
    rows, runs = [], []
    with _redises() as redises:
        for name, url in redises:
            log(f"fan-out at scale: {name}: {corpus_n:,} papers")
            _store_corpus(url, corpus_n)
            measured = {}
            try:
                for n in sizes:
                    log(f"fan-out at scale: {name}: {n:,} people x {CANDIDATES:,} candidates")
                    measured[n] = {"redis": name, **_measure(url, n, reps)}
                    runs.append(measured[n])
            finally:
                _delete_corpus(url)
            base, top = measured[sizes[0]], measured[sizes[-1]]
            for n in sizes:
                m = measured[n]
                rows.append(Row(f"fan-out {n:,} people, {name}", m["fanout_s"], "s",
                                note=f"peak RSS {m['peak_rss_mb']:,.0f} MB ({m['rss_before_mb']:,.0f} "
                                     f"before the fan-out); {m['per_person_ms']:.3f} ms a person"))
            if len(sizes) > 1:
                growth = top["fanout_s"] / base["fanout_s"]
                rows.append(Row(f"fan-out time x{top['people'] // base['people']} people, {name}",
                                growth, "x", float(top["people"] // base["people"]), "linear",
                                note=f"RSS above the floor x{_above(top) / max(1.0, _above(base)):.1f}"))
    first = [r for r in runs if r["people"] == people_n][0]
    return rows, {"fanout_s": first["fanout_s"], "peak_rss_mb": first["peak_rss_mb"],
                  "people": people_n, "candidates": CANDIDATES, "corpus": corpus_n, "runs": runs}


def _above(m: dict[str, Any]) -> float:
    return m["peak_rss_mb"] - m["rss_before_mb"]


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
