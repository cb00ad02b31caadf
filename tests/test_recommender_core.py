"""The facade over a real Redis and the real model: ingest, dedupe, caching, search, model switch."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from recommender import PaperNotFound
from recommender.service import NoCloseMatch
from recommender.embedder import Embedder
from recommender.paper import title_id

PAPERS = [
    {"id": "2401.00001v1", "title": "Message passing graph neural networks for molecules",
     "abstract": "We predict molecular properties with an equivariant message passing network.",
     "categories": ["cs.LG", "physics.chem-ph"], "published": "2024-01-02"},
    {"id": "2401.00002", "title": "Denoising diffusion models for high resolution images",
     "abstract": "A cascaded diffusion model generates photorealistic images from text prompts.",
     "categories": ["cs.CV"], "published": "2024-01-03"},
    {"id": "2401.00003", "title": "Instruction tuning large language models for reasoning",
     "abstract": "Chain of thought data improves the mathematical reasoning of language models.",
     "categories": ["cs.CL"], "published": "2024-01-05"},
    {"title": "Speech recognition with self-supervised audio encoders",
     "abstract": "A wav2vec style encoder lowers word error rates on low resource languages.",
     "categories": ["eess.AS"], "published": "2024-01-06"},
]


def test_add_papers_counts_and_versions_dedupe(rec):
    counts = rec.add_papers(PAPERS)
    assert counts.as_dict() == {"read": 4, "new": 4, "embedded": 4}
    # v2 of a known paper is the same paper: nothing new, nothing embedded.
    again = rec.add_papers([{**PAPERS[0], "id": "2401.00001v2"}])
    assert again.as_dict() == {"read": 1, "new": 0, "embedded": 0}
    assert len(rec) == 4
    assert rec.get_paper("arXiv:2401.00001v7").title.startswith("Message passing")


def test_reingest_embeds_nothing_and_a_revision_embeds_once(rec, make_recommender):
    rec.add_papers(PAPERS)
    assert rec.add_papers(PAPERS).as_dict() == {"read": 4, "new": 0, "embedded": 0}
    revised = {**PAPERS[1], "id": "2401.00002v2", "abstract": PAPERS[1]["abstract"] + " Code released."}
    assert rec.add_papers([revised]).as_dict() == {"read": 1, "new": 0, "embedded": 1}
    # Another process (a restart) loads everything from Redis without embedding.
    calls = []
    restarted = make_recommender()
    original = restarted.embedder.encode
    restarted.embedder.encode = lambda texts, **kw: calls.append(texts) or original(texts, **kw)
    try:
        restarted.refresh()
        assert len(restarted) == 4 and calls == []
        hits = restarted.search("text to image generation", k=1)
        assert hits[0].paper.id == "2401.00002"
        assert hits[0].paper.abstract.endswith("Code released.")
    finally:
        restarted.embedder.encode = original


def test_search_ranks_by_meaning_with_filters(rec):
    rec.add_papers(PAPERS)
    hits = rec.search("chemistry with GNNs", k=4)
    assert hits[0].paper.id == "2401.00001"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "chemistry with GNNs" in hits[0].why
    recent = rec.search("reasoning of language models", k=4, since=dt.date(2024, 1, 4))
    assert recent[0].paper.id == "2401.00003"
    assert {h.paper.id for h in recent} <= {"2401.00003", title_id(PAPERS[3]["title"])}
    # the only papers since then are about language models and speech: none is close
    with pytest.raises(NoCloseMatch, match="close match"):
        rec.search("chemistry with GNNs", k=4, since=dt.date(2024, 1, 4))
    only_cv = rec.search("image generation", k=4, categories=["cs.CV"])
    assert [h.paper.id for h in only_cv] == ["2401.00002"]
    with pytest.raises(ValueError):
        rec.search("   ")


def test_similar_accepts_urls_and_excludes_the_paper(rec):
    rec.add_papers(PAPERS)
    hits = rec.similar("https://arxiv.org/abs/2401.00001v1", k=3)
    assert len(hits) == 3 and "2401.00001" not in {h.paper.id for h in hits}
    assert "Message passing" in hits[0].why
    with pytest.raises(PaperNotFound, match="don't know"):
        rec.similar("2999.99999")


def test_other_processes_ingest_shows_up_on_refresh(rec, make_recommender):
    other = make_recommender()
    other.add_papers(PAPERS[:2])
    assert len(rec) == 0
    assert rec.refresh() == 2
    assert rec.refresh() == 0


@pytest.fixture(scope="module")
def small_model_path(tmp_path_factory):
    """A second, genuinely different model: MiniLM with CLS pooling and a 64-d projection."""
    from sentence_transformers import SentenceTransformer, models

    from recommender.embedder import resolve_model

    base = models.Transformer(resolve_model("all-MiniLM-L6-v2"))
    pooling = models.Pooling(base.get_embedding_dimension(), pooling_mode="cls")
    dense = models.Dense(base.get_embedding_dimension(), 64)
    path = tmp_path_factory.mktemp("models") / "tiny-64"
    SentenceTransformer(modules=[base, pooling, dense], device="cpu").save(str(path))
    return str(path)


def test_switching_models_never_mixes_vectors(rec, make_recommender, small_model_path, redis_client, prefix):
    rec.add_papers(PAPERS)
    other = make_recommender(Embedder(small_model_path))
    assert other.index.dim == 64 and len(other) == 4   # re-embedded for the new model, once
    assert other.embedder.tag != rec.embedder.tag
    hits = other.search("molecules", k=2)
    assert len(hits) == 2 and all(np.isfinite(h.score) for h in hits)
    # Both models' vectors are kept side by side, under their own tags.
    dims = {k.decode(): int(v) for k, v in redis_client.hgetall(f"{prefix}models").items()}
    assert dims == {rec.embedder.tag: 384, other.embedder.tag: 64}
    for tag, dim in dims.items():
        for key in redis_client.scan_iter(match=f"{prefix}vec:{tag}:*"):
            assert len(redis_client.get(key)) == dim * 4
    # Switching back embeds nothing and ingest under the new model embeds only for it.
    assert make_recommender().add_papers(PAPERS).embedded == 0
    assert make_recommender(Embedder(small_model_path)).add_papers(PAPERS).embedded == 0
