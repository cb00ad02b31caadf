"""`paperbot bench`: every benchmark, the table (or one JSON object), and the notes.

Full run (`--data` has the arXiv corpus): the 74,728 papers are embedded once into the bench's
Redis (see `common.bench_redis`) and reused; 1,000,000 synthetic vectors; 10,000 people.
`--quick` (CI smoke, < 3 min): small synthetic corpora and samples, same code paths.
Without the data folder, everything runs on synthetic data and the output says so.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import chat_latency, cold_start, embedding, fanout, fanout_scale, memory, search
from .common import CORPUS_SIZE, Row, arxiv_file, delete_prefix, log, read_arxiv, \
    scratch_prefix, store_synthetic_corpus, synthetic_papers, synthetic_vectors, table
from .serve_harness import fakes_available

QUICK = {"corpus": 5_000, "scale": 50_000, "people": 1_000, "cold_reps": 1, "ingest": 48,
         "at_scale": (1_000, 1_000, 3_000, 1)}
FULL = {"corpus": CORPUS_SIZE, "scale": 1_000_000, "people": 10_000, "cold_reps": 3, "ingest": 400,
        "at_scale": (100_000, 10_000, fanout_scale.CORPUS, 3)}   # people, base people, papers, runs


def machine() -> dict[str, Any]:
    import os

    import torch

    from recommender.embedder import cpu_has_bf16

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "bf16": cpu_has_bf16(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version(),
            "load_avg_1m_at_start": load}


def copy_corpus(client, src: str, dst: str, tag: str) -> int:
    """Every paper of `src` (JSON, sequence, vector under `tag`) into `dst`, in order."""
    from recommender import slots
    from recommender.paper import content_hash
    from recommender.store import PaperStore

    rows = client.zrangebyscore(src + "papers", "-inf", "+inf", withscores=True)
    for start in range(0, len(rows), 2000):
        chunk = rows[start:start + 2000]
        raws = slots.mget(client, [src.encode() + b"paper:" + pid for pid, _ in chunk])
        hashes = []
        for raw in raws:
            data = json.loads(raw)
            hashes.append(content_hash(f"{data.get('title') or ''}\n{data.get('abstract') or ''}".strip()))
        vectors = slots.mget(client, [f"{src}vec:{tag}:{h}" for h in hashes])
        pipe = client.pipeline(transaction=False)
        for (pid, seq), raw, h, vec in zip(chunk, raws, hashes, vectors):
            pipe.set(dst.encode() + b"paper:" + pid, raw)
            if vec is not None:
                pipe.set(f"{dst}vec:{tag}:{h}", vec)
        pipe.zadd(dst + "papers", {pid: seq for pid, seq in chunk})
        pipe.execute()
    client.set(PaperStore(client, dst).seq_key, int(rows[-1][1]) if rows else 0)
    client.hset(dst + "models", mapping=client.hgetall(src + "models") or {tag: 384})
    return len(rows)


def run(data_dir: str | None, quick: bool, as_json: bool) -> int:
    from recommender.embedder import Embedder
    from recommender.service import Recommender
    from recommender.store import PaperStore

    from .common import bench_redis

    sizes = QUICK if quick else FULL
    arxiv = arxiv_file(data_dir)
    notes: list[str] = []
    if arxiv is None:
        notes.append(f"no arXiv corpus in {data_dir} ({Path('arxiv') / 'daily-arxiv-ai-enhanced' / 'papers.jsonl.gz'}"
                     " missing): every benchmark ran on synthetic data. Pass --data DIR for the "
                     "real figures.")
        log(notes[-1])
    started = time.time()
    rows: list[Row] = []
    out: dict[str, Any] = {"quick": quick, "data": str(data_dir) if arxiv else None,
                           "machine": machine()}
    failures: list[str] = []

    def step(name: str, fn) -> Any:
        try:
            result = fn()
        except Exception as exc:   # one benchmark failing must not hide the others
            failures.append(f"{name}: {exc}")
            log(f"{name} FAILED:\n{traceback.format_exc()}")
            rows.append(Row(name, None, "", note=f"FAILED: {str(exc).splitlines()[0][:120]}"))
            return None
        if result is not None:
            new_rows, fields = result
            rows.extend(new_rows)
            out.update(fields)
        return result

    full_corpus = arxiv is not None and not quick
    with bench_redis(persistent=full_corpus) as (client, url, prefix):
        step("embedding", lambda: embedding.run(data_dir, quick, client, prefix))
        embedder = Embedder()
        precision, tag = embedder.precision or "float32", embedder.tag
        # -- the corpus every other benchmark reads ---------------------------------------
        own = None
        if full_corpus:
            info = cold_start.ensure_corpus(client, url, prefix, arxiv)
            if info.get("seconds"):
                rows.append(Row(f"embed: full corpus ({info.get('embedded', '?')} papers)",
                                float(info["seconds"]) / 60, "min",
                                note=f"paperbot ingest, {info.get('at', '')} ({info.get('how', '')})"))
                out["full_corpus_embed_minutes"] = round(float(info["seconds"]) / 60, 1)
            corpus_prefix, what = prefix, "arXiv corpus"
        else:
            own = corpus_prefix = scratch_prefix(prefix)
            what = f"synthetic {sizes['corpus']:,}-paper corpus"
            rec0 = Recommender(PaperStore(client, corpus_prefix), embedder)
            store_synthetic_corpus(rec0, synthetic_papers(sizes["corpus"], seed=2, words=20),
                                   synthetic_vectors(sizes["corpus"], embedder.dim, seed=2))
        try:
            step("cold start", lambda: cold_start.run(url, corpus_prefix, client, precision, tag,
                                                      sizes["cold_reps"], what))
            rec = Recommender(PaperStore(client, corpus_prefix), embedder)
            step("search at corpus", lambda: search.at_corpus(rec, quick, what))
            anchors = rec.index.matrix if full_corpus else None
            step("search at scale", lambda: search.at_scale(embedder, anchors, sizes["scale"], quick))
            step("fan-out", lambda: fanout.run(rec, sizes["people"], quick, what))
            rec = anchors = None   # the index is not needed by the serve benchmarks
            # -- chat latency and memory: serve on a copy (it ingests and posts) ----------
            if not fakes_available():
                notes.append("chat latency and memory skipped: the testkit package (the fake "
                             "Slack and Discord) is not installed")
            else:
                chat_prefix = own or scratch_prefix(prefix)
                try:
                    if own is None:
                        log("copying the corpus for serve (it ingests and posts into it)")
                        copy_corpus(client, corpus_prefix, chat_prefix, tag)
                    if arxiv is not None:
                        fresh = read_arxiv(arxiv, limit=sizes["ingest"], every=53, offset=5)
                        for p in fresh:   # new ids and texts: embedded for real
                            p["id"] = f"bench-new-{p['id']}"
                            p["title"] = "(new) " + p["title"]
                    else:
                        fresh = synthetic_papers(sizes["ingest"], seed=9)
                    result = step("chat latency", lambda: chat_latency.run(
                        url, chat_prefix, client, quick, fresh, what))
                    if result is not None:
                        serve_memory = out.pop("_serve_memory", {})
                        step("memory", lambda: memory.run(url, chat_prefix, serve_memory,
                                                          precision, what))
                finally:
                    if chat_prefix != own:
                        delete_prefix(client, chat_prefix)
        finally:
            if own is not None:
                delete_prefix(client, own)
    step("fan-out at scale", lambda: _nested("fanout_at_scale", fanout_scale.run(*sizes["at_scale"])))
    out["seconds"] = round(time.time() - started, 1)
    out["notes"] = notes
    out["failures"] = failures
    if as_json:
        print(json.dumps(out, indent=2, default=str))
    else:
        m = out["machine"]
        print(f"paperbot bench{' --quick' if quick else ''}: {m['cpu']}, {m['cores']} cores, "
              f"bf16 {'yes' if m['bf16'] else 'no'}, GPU {m['gpu'] or 'none'}, "
              f"load {m['load_avg_1m_at_start']}")
        print(table(rows))
        for note in notes:
            print(f"note: {note}")
        print(f"{out['seconds']:.0f} s")
    return 1 if failures else 0


def _nested(name: str, result: tuple[list[Row], dict[str, Any]]) -> tuple[list[Row], dict[str, Any]]:
    rows, fields = result
    return rows, {name: fields}


def run_fanout_at_scale(people: int, as_json: bool) -> int:
    """`paperbot bench --only fanout`: the fan-out for `people` (and 10,000) on each Redis."""
    started = time.time()
    rows, out = fanout_scale.run(people)
    out = {**out, "machine": machine(), "seconds": round(time.time() - started, 1)}
    if as_json:
        print(json.dumps(out, indent=2))
    else:
        print(table(rows))
        print(f"{out['seconds']:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--data", default="../shared/data")
    args = parser.parse_args(argv)
    sys.exit(run(args.data, args.quick, args.json))


if __name__ == "__main__":
    main()
