"""The fast paths give what the plain ones give: batched scoring and picks (the daily fan-out),
float16 and ANN index storage, the bulk refresh, and the embedder's precision setting."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from recommender import batch_scoring, fanout, ranking
from recommender.config import Settings, check_precision
from recommender.embedder import Embedder, choose_precision
from recommender.index import VectorIndex, faiss_available


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _people(rng, corpus, topics, count):
    people = []
    for _ in range(count):
        signals = [ranking.Signal(topics[rng.integers(len(topics))], "t", "topic")
                   for _ in range(rng.integers(0, 4))]
        for kind, most in (("like", 7), ("save", 2), ("dislike", 3)):
            signals += [ranking.Signal(corpus[rng.integers(len(corpus))], kind[0], kind,
                                       float(rng.uniform(0, 300))) for _ in range(rng.integers(0, most))]
        people.append(signals)
    return people


def _same_as(signals, reason: int):
    """A reason as what it says (the signal's kind and vector), not its position."""
    return None if reason < 0 else (signals[reason].kind, signals[reason].vector.tobytes(),
                                    signals[reason].age_days)


def test_score_many_is_score_candidates_for_everyone():
    rng = np.random.default_rng(0)
    base = _unit(rng.standard_normal((60, 32)))
    corpus = _unit(base[rng.integers(0, 60, 3000)] + 0.1 * rng.standard_normal((3000, 32)))
    topics = _unit(base[:20] + 0.05 * rng.standard_normal((20, 32)))
    people = _people(rng, corpus, topics, 150) + [[], [ranking.Signal(corpus[0], "x", "dislike")]]
    # a flat interest vector, far from every paper: an extreme z-scoring, batched like the rest
    people.append([ranking.Signal(np.ones(32, dtype=np.float32) / np.sqrt(32), "flat", "topic"),
                   ranking.Signal(corpus[5], "l", "like")])
    candidates, background = corpus[:700], ranking.prepare_background(corpus[1000:2000])
    # topics' word matches: most candidates share no word with the topic, a few match well
    lexical = []
    for signals in people:
        lex = np.zeros((700, len(signals)), dtype=np.float32)
        for j, signal in enumerate(signals):
            if signal.kind == "topic":
                lex[:, j] = rng.uniform(0, 1.5, 700) * (rng.random(700) < 0.1)
        lexical.append(lex if len(signals) % 2 == 0 else None)   # some people without
    # a low temperature sends people whose exponents could overflow float32 to the per-person
    # function, beside the others in the same block
    for options in ({}, {"model_weight": 0.0}, {"min_positives": 2, "temperature": 0.5},
                    {"temperature": 0.05}):
        many = batch_scoring.score_many(people, candidates, background, block=40,
                                        lexical=lexical, **options)
        for p, signals in enumerate(people):
            one = ranking.score_candidates(signals, candidates, background, lexical=lexical[p],
                                           **options)
            np.testing.assert_allclose(many.scores[p], one.scores, atol=1e-4, rtol=1e-5)
            top = np.argsort(-one.scores, kind="stable")[:20]
            # the same reason: a topic drawn twice is two equal signals, an exact tie that
            # float rounding may break toward either (CPUs differ in their kernels)
            assert [_same_as(signals, r) for r in many.reasons[p][top]] == \
                [_same_as(signals, r) for r in one.reasons[top]]
    with pytest.raises(ValueError, match="unknown signal kind"):
        batch_scoring.score_many([[ranking.Signal(corpus[0], "x", "meh")]], candidates, background)


def test_picks_for_many_are_recommend_and_picks_for_channel(rec, demo, monkeypatch):
    ids = list(demo)
    candidates = ids[10:]
    # several blocks of people, on several threads, each scored a few signals at a time
    monkeypatch.setattr(fanout, "FANOUT_BLOCK", 3)
    monkeypatch.setattr(fanout, "FANOUT_CELLS", 4 * len(candidates))
    people = [f"slack:T1:U{n}" for n in range(6)]
    for n, person in enumerate(people):
        rec.subscribe(person, ["speech recognition", "graph neural networks", "robots"][n % 3])
        if n % 2 == 0:   # two interests: the picks share their seats
            rec.subscribe(person, "language models")
        for pid in ids[n:n + n % 4]:
            rec.record_feedback(person, pid, "like")
        if n % 2:
            rec.record_feedback(person, ids[9 - n], "dislike")
        rec.mark_shown(person, candidates[n:n + 3])
    channel = "slack:T1:CLAB"
    rec.subscribe(channel, "language models")
    rec.record_feedback(people[0], ids[3], "save", channel=channel)
    lonely = "slack:T1:UNOBODY"      # no topics, no feedback: no picks, as recommend gives
    # a year of daily posts: more shown papers than candidates (Redis filters them by lookup),
    # among them the four this person would get first
    veteran = people[0]
    first = {r.paper.id for r in rec.recommend(veteran, k=4, candidates=candidates)}
    rec.mark_shown(veteran, list(first) + [f"2001.{n:05d}" for n in range(len(candidates) + 5)])
    best = {who: rec.recommend(who, k=1, candidates=candidates)[0].paper.id for who in people[1:]}
    for who, pid in best.items():   # everybody's best pick, shown: each must be left out
        rec.mark_shown(who, [pid])
    many = rec.picks_for_many(people + [lonely], [channel], k=4, candidates=candidates)
    assert many[veteran] and not first & {r.paper.id for r in many[veteran]}
    assert all(pid not in [r.paper.id for r in many[who]] for who, pid in best.items())
    for who in people + [lonely]:
        one = rec.recommend(who, k=4, candidates=candidates)
        assert [(r.paper.id, r.why) for r in many[who]] == [(r.paper.id, r.why) for r in one]
        assert [r.score for r in many[who]] == pytest.approx([r.score for r in one], abs=1e-4)
    one = rec.picks_for_channel(channel, k=4, candidates=candidates)
    assert [(r.paper.id, r.why) for r in many[channel]] == [(r.paper.id, r.why) for r in one]
    assert many[lonely] == []


def _filled(index: VectorIndex, n: int = 3000, dim: int = 48, seed: int = 1):
    rng = np.random.default_rng(seed)
    vectors = _unit(rng.standard_normal((n, dim)))
    dates = [dt.date(2025, 1, 1) + dt.timedelta(days=i % 200) for i in range(n)]
    cats = [["cs.LG"] if i % 3 else ["cs.CV"] for i in range(n)]
    index.upsert([f"p{i}" for i in range(n)], vectors, dates, cats)
    return vectors


def test_float16_index_orders_results_as_float32():
    exact, half = VectorIndex(48, dtype="float32", ann="off"), VectorIndex(48, dtype="float16", ann="off")
    vectors = _filled(exact)
    _filled(half)
    assert half.matrix.dtype == np.float16 and half.vectors_for(["p1"]).dtype == np.float32
    rng = np.random.default_rng(5)
    for q in _unit(vectors[:20] + 0.8 * rng.standard_normal((20, 48))):
        for kw in ({}, {"since": dt.date(2025, 5, 1)}, {"categories": ["cs.cv"]}, {"exclude": ["p3"]}):
            a, b = exact.search(q, 8, **kw), half.search(q, 8, **kw)
            assert [i for i, _ in a] == [i for i, _ in b]
            assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=2e-3)


@pytest.mark.skipif(not faiss_available(), reason="faiss not installed (the ann extra)")
def test_ann_index_finds_the_exact_neighbours_and_follows_updates():
    rng = np.random.default_rng(2)
    centres = _unit(rng.standard_normal((40, 48)))
    vectors = _unit(centres[rng.integers(0, 40, 6000)] + 0.15 * rng.standard_normal((6000, 48)))
    ids = [f"p{i}" for i in range(6000)]
    dates = [dt.date(2025, 1, 1) + dt.timedelta(days=i % 200) for i in range(6000)]
    exact = VectorIndex(48, ann="off")
    ann = VectorIndex(48, ann="on", ann_min_rows=1000)
    for index in (exact, ann):
        index.upsert(ids[:5000], vectors[:5000], dates[:5000], [["cs.LG"]] * 5000)
    ann.build_ann()
    assert ann.ann_ready
    for index in (exact, ann):   # added and replaced after the build
        index.upsert(ids[5000:], vectors[5000:], dates[5000:], [["cs.LG"]] * 1000)
        index.upsert(["p7"], vectors[8:9], [dates[7]], [["cs.LG"]])
    recall = []
    for q in vectors[rng.choice(6000, 50, replace=False)]:
        truth = [i for i, _ in exact.search(q, 10)]
        found = [i for i, _ in ann.search(q, 10)]
        recall.append(len(set(truth) & set(found)) / 10)
    assert np.mean(recall) >= 0.95
    assert {i for i, _ in ann.search(vectors[8], 2)} == {"p7", "p8"}
    assert "p8" not in [i for i, _ in ann.search(vectors[8], 3, exclude=["p8"])]
    since = dt.date(2025, 6, 1)
    assert all(dates[int(i[1:])] >= since for i, _ in ann.search(vectors[3], 10, since=since))


def test_refresh_loads_what_add_papers_indexed(make_recommender, demo):
    first = make_recommender()
    again = make_recommender()
    assert again.index.ids == first.index.ids
    np.testing.assert_array_equal(again.index.matrix, first.index.matrix)
    assert again.index.mask(categories=["cs.CL"]).tolist() == first.index.mask(categories=["cs.CL"]).tolist()


def test_precision_setting():
    assert check_precision("BF16") == "bfloat16" and check_precision("") == "auto"
    with pytest.raises(ValueError, match="PAPERBOT_PRECISION must be auto, float32 or bfloat16"):
        check_precision("int8")
    with pytest.raises(ValueError, match="PAPERBOT_PRECISION"):
        Settings.from_env({"PAPERBOT_PRECISION": "fp16"})
    assert Settings.from_env({"PAPERBOT_PRECISION": "bf16"}).precision == "bfloat16"
    assert choose_precision("float32", "cpu") == "float32"
    assert choose_precision("auto", "mps") == "float32"
    assert choose_precision("bfloat16", "cpu") == "bfloat16"


def test_bfloat16_vectors_match_float32(embedder):
    texts = ["Graph neural networks for molecular property prediction.\nWe propose a message "
             "passing network that learns from 3D conformers and improves accuracy.",
             "speech recognition", "A survey of diffusion models for image generation."]
    exact = Embedder(precision="float32").encode(texts)
    fast = Embedder(precision="bfloat16").encode(texts)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert (exact * fast).sum(axis=1).min() > 0.999
