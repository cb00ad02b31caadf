"""Two more offline checks of the ranking, beside the CiteULike libraries of :mod:`.citeulike`.

Why: CiteULike asks "is the held-out paper somewhere in the top 50 of 17,000"; it says nothing
about ordering a handful of papers that are all close to someone's field (a daily post), nor
about a person who has only typed a topic (day one). Each task computes its baselines in the
same run, on the same vectors, and returns ``({method: {metric: value}}, meta)``.

* :func:`run_expertise` -- ``<data>/reviewer-expertise-dev`` (Stelmakh et al. 2023, the half kept
  for development): each researcher's recent papers are their liked papers; their rated papers
  are ranked; ``loss`` = weighted share of wrongly ordered pairs of rated papers (lower is
  better, 0.5 = constant), pooled over researchers, mean over the ten profile datasets.
* :func:`run_topic` -- ``<data>/citeulike``: multi-word CiteULike tags ("gene-expression",
  "social_networks") stand in for a typed topic; the papers carrying the tag are relevant and
  all 16,980 papers are ranked; ``recall@50`` and ``ndcg@10`` as in :mod:`.citeulike`. Topics
  alternate between a tuning half and the reported half, so tuning never sees the reported one.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable

import numpy as np

from evaluation import citeulike as ev
from recommender import ranking
from recommender.lexical import LexicalIndex, terms_of

EXPERTISE_METHODS = ("constant", "max-cosine", "mean-cosine", "top3-mean", "tfidf-max", "paperbot")
TOPIC_METHODS = ("cosine", "bm25", "paperbot")
TOPIC_METRICS = ("recall@50", "ndcg@10")
TOPIC_COUNT = 200          # topics selected, half of them reported
TOPIC_MIN_PAPERS = 30      # a topic needs this many tagged papers
BOOTSTRAP = 1000

Embed = Callable[[list[str]], np.ndarray]


def _embed_all(embed: Embed, texts: list[str]) -> np.ndarray:
    vectors = np.asarray(embed(texts), dtype=np.float32)
    if vectors.shape[0] != len(texts):
        raise ValueError(f"embed returned {vectors.shape[0]} vectors for {len(texts)} texts")
    return vectors


def _paired(per_unit: dict[str, np.ndarray], metrics: tuple[str, ...]) -> dict:
    """Mean per-unit difference paperbot - method and its standard error, for every method."""
    out = {}
    base = per_unit["paperbot"]
    for m, values in per_unit.items():
        if m == "paperbot" or len(base) < 2:
            continue
        diff = base - values
        se = diff.std(axis=0, ddof=1) / np.sqrt(len(diff))
        out[m] = {k: {"diff": round(float(a), 5), "se": round(float(b), 5)}
                  for k, a, b in zip(metrics, diff.mean(axis=0), se)}
    return out


# --------------------------------------------------------------------------------------------
# expertise


def pair_loss(scores, expertise) -> tuple[float, float]:
    """(loss, weight) of one researcher: over pairs of rated papers with different expertise,
    weight |e1 - e2|, the whole weight lost when the scores order the pair the other way and
    half of it when they tie."""
    s = np.asarray(scores, dtype=np.float64)
    e = np.asarray(expertise, dtype=np.float64)
    i, j = np.triu_indices(len(e), k=1)
    de, ds = e[i] - e[j], s[i] - s[j]
    weight = np.abs(de)
    lost = np.where(ds == 0, 0.5, (np.sign(ds) != np.sign(de)).astype(np.float64))
    keep = de != 0
    return float((weight * lost)[keep].sum()), float(weight[keep].sum())


def expertise_loss(researchers) -> float:
    """Pooled loss of (scores, expertise) pairs, one per researcher: sum of losses / sum of
    weights (0 perfect, 0.5 constant scores, 1 every pair reversed)."""
    totals = np.array([pair_loss(s, e) for s, e in researchers]).reshape(-1, 2)
    return float(totals[:, 0].sum() / totals[:, 1].sum()) if totals[:, 1].sum() else 0.0


def load_expertise(data_dir: str | Path) -> tuple[list[str], list[str], list[dict]]:
    """(paper ids, texts, reviewers) from a reviewer-expertise-dev folder."""
    data_dir = Path(data_dir)
    for name in ("papers.jsonl", "reviewers.jsonl"):
        if not (data_dir / name).is_file():
            raise FileNotFoundError(f"reviewer expertise data not found: {data_dir / name} is "
                                    "missing (pass the reviewer-expertise-dev folder)")
    with open(data_dir / "papers.jsonl", encoding="utf-8") as fh:
        papers = [json.loads(line) for line in fh if line.strip()]
    with open(data_dir / "reviewers.jsonl", encoding="utf-8") as fh:
        reviewers = [json.loads(line) for line in fh if line.strip()]
    texts = [((p.get("title") or "") + "\n" + (p.get("abstract") or "")).strip() for p in papers]
    return [p["id"] for p in papers], texts, reviewers


def _expertise_scores(method, vectors, tfidf, profile, rated, background) -> np.ndarray:
    if method == "constant":
        return np.zeros(len(rated))
    if method == "tfidf-max":
        return (tfidf[rated] @ tfidf[profile].T).toarray().max(axis=1)
    if method == "paperbot":
        return ev.paperbot_scores(vectors, profile, rated, background)
    sims = vectors[rated] @ vectors[profile].T
    if method == "max-cosine":
        return ev.neighbour_scores(sims, 1)
    if method == "top3-mean":
        return ev.neighbour_scores(sims, 3)
    if method == "mean-cosine":
        centre = vectors[profile].mean(axis=0)
        return vectors[rated] @ (centre / max(np.linalg.norm(centre), 1e-12))
    raise ValueError(f"unknown method {method!r}")


def run_expertise(data_dir: str | Path, embed: Embed, methods=EXPERTISE_METHODS,
                  seed: int = 0) -> tuple[dict, dict]:
    """({method: {"loss": mean over the profile datasets}}, meta). `data_dir` is the
    reviewer-expertise-dev folder; `embed` is called once with all paper texts; `seed` seeds
    the bootstrap of meta's ``paperbot_minus``."""
    started = time.perf_counter()
    ids, texts, reviewers = load_expertise(data_dir)
    row = {pid: n for n, pid in enumerate(ids)}
    t = time.perf_counter()
    vectors = _embed_all(embed, texts)
    embed_seconds = time.perf_counter() - t
    background = ranking.prepare_background(vectors)
    tfidf = ev.tfidf_matrix(texts)
    n_sets = len(reviewers[0]["profiles"]) if reviewers else 0
    if any(len(r["profiles"]) != n_sets for r in reviewers):
        raise ValueError("every researcher needs the same number of profile datasets")
    methods = list(methods)
    # per method: (researcher, dataset) loss sums; weights are the same for every dataset
    losses = {m: np.zeros((len(reviewers), n_sets)) for m in methods}
    weights = np.zeros(len(reviewers))
    for r, reviewer in enumerate(reviewers):
        rated = np.array([row[x["paper"]] for x in reviewer["ratings"]], dtype=np.int64)
        expertise = [x["expertise"] for x in reviewer["ratings"]]
        for d, profile_ids in enumerate(reviewer["profiles"]):
            profile = np.array([row[p] for p in profile_ids], dtype=np.int64)
            for m in methods:
                scores = _expertise_scores(m, vectors, tfidf, profile, rated, background)
                losses[m][r, d], weights[r] = pair_loss(scores, expertise)   # same weight each d
    results = {m: {"loss": float(np.mean(losses[m].sum(axis=0) / weights.sum()))}
               for m in methods}
    meta = {"researchers": len(reviewers),
            "rated_papers": int(sum(len(r["ratings"]) for r in reviewers)),
            "papers": len(ids), "profile_datasets": n_sets, "bootstrap": BOOTSTRAP,
            "embed_seconds": round(embed_seconds, 2),
            "seconds": round(time.perf_counter() - started, 2)}
    if "paperbot" in methods:
        meta["paperbot_minus"] = _bootstrap_diffs(losses, weights, seed)
    return results, meta


def _bootstrap_diffs(losses: dict, weights: np.ndarray, seed: int) -> dict:
    """paperbot's loss minus each method's, and its bootstrap standard error over researchers
    (the dev half has only 27 of them, so a difference of a few hundredths may be noise)."""
    rng = np.random.default_rng(seed)
    n = len(weights)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                       for _ in range(BOOTSTRAP)]).astype(np.float64)   # (B, researchers)
    denom = counts @ weights

    def resampled(m):
        return ((counts @ losses[m]) / denom[:, None]).mean(axis=1)

    def pooled(m):
        return float((losses[m].sum(axis=0) / weights.sum()).mean())

    base = resampled("paperbot")
    return {m: {"loss": {"diff": round(pooled("paperbot") - pooled(m), 5),
                         "se": round(float((base - resampled(m)).std(ddof=1)), 5)}}
            for m in losses if m != "paperbot"}


# --------------------------------------------------------------------------------------------
# topics


def select_topics(tag_names: list[str], item_tags: list[list[int]],
                  half: str = "report") -> list[tuple[str, np.ndarray]]:
    """(phrase, paper ids) of the topics of one half: multi-word tags without digits, merged by
    phrase, with >= TOPIC_MIN_PAPERS papers, the TOPIC_COUNT largest (ties by phrase), then
    every other one (tune: positions 0, 2, ...; report: 1, 3, ...)."""
    if half not in ("report", "tune"):
        raise ValueError(f"half must be 'report' or 'tune', not {half!r}")
    phrase_of = {}
    for tag_id, name in enumerate(tag_names):
        if re.search(r"[-_]", name) and not re.search(r"\d", name):
            words = [w for w in re.split(r"[-_]+", name.lower()) if w]
            if len(words) >= 2:
                phrase_of[tag_id] = " ".join(words)
    papers: dict[str, set[int]] = {}
    for doc, tags in enumerate(item_tags):
        for tag_id in tags:
            phrase = phrase_of.get(tag_id)
            if phrase is not None:
                papers.setdefault(phrase, set()).add(doc)
    kept = sorted((p for p in papers if len(papers[p]) >= TOPIC_MIN_PAPERS),
                  key=lambda p: (-len(papers[p]), p))[:TOPIC_COUNT]
    chosen = kept[1::2] if half == "report" else kept[0::2]
    return [(p, np.array(sorted(papers[p]), dtype=np.int64)) for p in chosen]


def load_tags(citeulike_dir: str | Path) -> tuple[list[str], list[list[int]]]:
    """(tag names by id, tag ids per doc) from citeulike-a/tags.dat and item-tag.dat."""
    folder = Path(citeulike_dir) / "citeulike-a"
    for name in ("tags.dat", "item-tag.dat"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"CiteULike tags not found: {folder / name} is missing")
    with open(folder / "tags.dat", encoding="utf-8", errors="replace") as fh:
        names = [line.rstrip("\n").strip() for line in fh]
    with open(folder / "item-tag.dat", encoding="utf-8") as fh:
        item_tags = [[int(x) for x in line.split()[1:]] for line in fh]
    return names, item_tags


def corpus_texts(papers: list[dict]) -> list[str]:
    """Each paper's text exactly as :func:`citeulike.build_variant` makes it (title + abstract
    where there is an abstract, else the title), so the embedding cache already holds them."""
    return [(p["title"] or "") + "\n" + p["abstract"] if p.get("abstract") else p["title"] or ""
            for p in papers]


def run_topic(data_dir: str | Path, embed: Embed, half: str = "report", seed: int = 0,
              methods=TOPIC_METHODS) -> tuple[dict, dict]:
    """({method: {recall@50, ndcg@10}}, meta) over the topics of `half`; `data_dir` is the
    citeulike folder; `embed` is called once for the corpus and once for the phrases."""
    started = time.perf_counter()
    papers, _ = ev.load_citeulike(data_dir)
    topics = select_topics(*load_tags(data_dir), half=half)
    texts = corpus_texts(papers)
    t = time.perf_counter()
    vectors = _embed_all(embed, texts)
    topic_vectors = _embed_all(embed, [p for p, _ in topics]) if topics else vectors[:0]
    embed_seconds = time.perf_counter() - t
    index = LexicalIndex()
    for row, text in enumerate(texts):
        index.put(row, terms_of(text))
    rng = np.random.default_rng([seed, 3, 7])
    n = len(texts)
    bg_idx = (np.sort(rng.choice(n, size=ev.BACKGROUND_SIZE, replace=False))
              if n > ev.BACKGROUND_SIZE else np.arange(n))
    background = ranking.prepare_background(vectors[bg_idx])
    methods = list(methods)
    per_topic = {m: np.zeros((len(topics), len(TOPIC_METRICS))) for m in methods}
    for k, ((phrase, relevant), vector) in enumerate(zip(topics, topic_vectors)):
        cosine = vectors @ vector
        lexical = index.scores(phrase)
        for m in methods:
            if m == "cosine":
                scores = cosine
            elif m == "bm25":
                scores = lexical + 1e-6 * cosine        # the cosine only breaks ties
            elif m == "paperbot":
                # as the product does: the topic moved toward its best matches, then ranked
                expanded = ranking.expand_topic(vector, vectors, lexical, background)
                signal = ranking.Signal(vector=expanded, label=phrase, kind="topic", words=phrase)
                scores = ranking.score_candidates([signal], vectors, background,
                                                  lexical=lexical[:, None]).scores
            else:
                raise ValueError(f"unknown method {m!r}")
            top = ev.top_k(np.asarray(scores, dtype=np.float64), 50)
            _, recall50, ndcg10 = ev.metrics(top, relevant)
            per_topic[m][k] = (recall50, ndcg10)
    results = {m: {k: float(v) for k, v in zip(TOPIC_METRICS, per_topic[m].mean(axis=0))}
               if len(topics) else {k: 0.0 for k in TOPIC_METRICS} for m in methods}
    meta = {"topics": len(topics), "half": half, "papers": n,
            "mean_relevant": float(np.mean([len(r) for _, r in topics])) if topics else 0.0,
            "embed_seconds": round(embed_seconds, 2),
            "seconds": round(time.perf_counter() - started, 2)}
    if "paperbot" in methods:
        meta["paperbot_minus"] = _paired(per_topic, TOPIC_METRICS)
    return results, meta


# --------------------------------------------------------------------------------------------
# output


def format_task_table(title: str, results: dict, metrics, lower_is_better: bool = False,
                      paired: dict | None = None) -> str:
    """Methods as rows, metrics as columns, the best of each column marked *; with `paired`
    (meta's ``paperbot_minus``) also paperbot's difference to each method +- its standard
    error, so that a gap can be told from noise."""
    pick = min if lower_is_better else max
    best = {k: pick(results[m][k] for m in results) for k in metrics}
    header = ["method"] + list(metrics)
    if paired:
        header += [f"paperbot - row {k}" for k in metrics]
    rows = []
    for m in results:
        row = [m] + [f"{results[m][k]:.4f}{'*' if results[m][k] == best[k] else ' '}"
                     for k in metrics]
        if paired:
            row += [f"{paired[m][k]['diff']:+.4f} (se {paired[m][k]['se']:.4f})" if m in paired
                    else "" for k in metrics]
        rows.append(row)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    note = " (lower is better)" if lower_is_better else ""
    lines = [f"{title}{note}", "  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)
