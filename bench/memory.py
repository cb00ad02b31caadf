"""6. Memory: peak RSS of `paperbot serve` with the corpus loaded.

The idle `paperbot serve --slack-http --discord` of the chat-latency benchmark, on the corpus:
it loads every paper into its index, answers its rounds of 50 + 50 searches (model and index
both warm), and its peak resident set is read from /proc/<pid>/status (VmHWM) just before it
stops. (Its ru_maxrss from os.wait4 is kept but not used: Linux carries the forking parent's
high-water mark into a child's, and the bench process is large by then.) The floor is a bare
process holding what cannot be avoided: the model in the same precision (torch and all) and
the float32 matrix of the same number of vectors, its VmHWM read the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from .common import REPO, Row, env_for, log

FLOOR = r"""
import json, os, resource, sys
import numpy as np, torch
from sentence_transformers import SentenceTransformer
from recommender.embedder import resolve_model
os.environ.setdefault("HF_HUB_OFFLINE", "1")
model = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
if sys.argv[2] == "bfloat16":
    model.to(torch.bfloat16)
matrix = np.ones((max(1, int(sys.argv[1])), 384), dtype=np.float32)
q = model.encode(["graph neural networks"], normalize_embeddings=True)[0]
(matrix @ q.astype(np.float32)).argmax()
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"peak_mb": peak}))
"""


def floor_mb(url: str, prefix: str, papers: int, precision: str) -> float | None:
    done = subprocess.run([sys.executable, "-c", FLOOR, str(papers), precision], cwd=str(REPO),
                          env=env_for(url, prefix), capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        log(f"memory floor failed: {done.stderr[-500:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]


def run(url: str, prefix: str, serve_memory: dict[str, Any], precision: str,
        what: str) -> tuple[list[Row], dict[str, Any]]:
    """`serve_memory`: what the chat-latency benchmark read of its idle `paperbot serve` (the
    same setup, after it answered every command of its rounds)."""
    papers = int(serve_memory.get("papers") or 0)
    # VmHWM: the peak of this process's own memory. ru_maxrss is not used: Linux carries the
    # forking parent's high-water mark into a child's (the bench process is large by then).
    hwm = serve_memory.get("vm_hwm_mb")
    if hwm is None:
        return [Row("peak RSS of paperbot serve", None, "MB", note="not measured (no /proc)")], {}
    peak = hwm
    log(f"memory: floor process with the model and {papers:,} vectors")
    floor = floor_mb(url, prefix, papers, precision)
    rows = [Row(f"peak RSS of paperbot serve ({papers:,} papers)", peak, "MB", floor,
                "model + float32 matrix alone",
                note=f"{what}; VmHWM after {serve_memory.get('searches')} searches")]
    return rows, {"peak_rss_mb": round(peak, 1),
                  "peak_rss_floor_mb": round(floor, 1) if floor else None,
                  "peak_rss_ratio": round(peak / floor, 3) if floor else None,
                  "peak_rss_papers": papers}
