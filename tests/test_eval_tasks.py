"""The expertise and topic evaluation tasks (evaluation.tasks) and `paperbot eval` on
tiny synthetic data dirs with a hashed bag-of-words `embed`: the real model and data are slow."""

from __future__ import annotations

import contextlib
import json
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from bot import cli
from evaluation import command
from evaluation import tasks as et

TOPICS = ["graph neural network", "ocean coral reef", "galaxy dark matter", "gene protein cell"]


def fake_embed(texts):
    """Hashed bag of words, normalised: texts sharing words get close vectors."""
    out = np.full((len(texts), 64), 1e-3, dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, zlib.crc32(w.encode()) % 64] += 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_expertise(root):
    """3 researchers, 15 papers; each knows one topic (expertise 5) and others less."""
    papers = [{"id": f"p{i}", "title": f"{TOPICS[i % 3]} note {i}",
               "abstract": None if i % 4 == 0 else f"more on {TOPICS[i % 3]}"} for i in range(15)]
    reviewers = []
    for r in range(3):
        own = [f"p{i}" for i in range(15) if i % 3 == r]
        profiles = [own[:3], own[1:4]] * 5                       # ten profile datasets
        others = [f"p{i}" for i in range(15) if i % 3 != r][:5]
        ratings = [{"paper": own[4], "expertise": 5.0}] + [
            {"paper": p, "expertise": 1.0 + k % 2} for k, p in enumerate(others)]
        reviewers.append({"id": str(r), "profiles": profiles, "ratings": ratings})
    _write_jsonl(root / "reviewer-expertise-dev" / "papers.jsonl", papers)
    _write_jsonl(root / "reviewer-expertise-dev" / "reviewers.jsonl", reviewers)


def write_citeulike(root, n=80):
    """n papers on 4 topics; tags: a hyphenated and an underscored spelling of each topic's
    phrase, plus tags the topic rule must drop (single word, digits)."""
    folder = root / "citeulike"
    papers = [{"id": i, "title": f"{TOPICS[i % 4]} paper {i}",
               "abstract": f"we study the {TOPICS[i % 4]}" if i % 3 == 0 else None,
               "citeulike_id": None} for i in range(n)]
    _write_jsonl(folder / "papers.jsonl", papers)
    (folder / "citeulike-a").mkdir()
    tags = ["graph-neural-network", "ocean_coral-reef", "galaxy-dark-matter", "gene-protein-cell",
            "graph_neural_network", "network", "web-2-0", "deep-learning2"]
    (folder / "citeulike-a" / "tags.dat").write_text("\n".join(tags) + "\n")
    lines = []
    for i in range(n):
        t = [i % 4, 5, 6, 7] + ([4] if i % 8 == 0 else [])
        lines.append(f"{len(t)} " + " ".join(map(str, t)))
    (folder / "citeulike-a" / "item-tag.dat").write_text("\n".join(lines) + "\n")
    users = [" ".join(map(str, range(u, n, 7))) for u in range(5)]
    (folder / "citeulike-a" / "users.dat").write_text(
        "\n".join(f"{len(u.split())} {u}" for u in users) + "\n")
    return folder


def test_pair_loss_on_hand_made_cases():
    e = [1.0, 2.0, 4.0]
    assert et.pair_loss([0.1, 0.2, 0.3], e) == (0.0, 6.0)            # perfect order
    assert et.pair_loss([0.3, 0.2, 0.1], e) == (6.0, 6.0)            # reversed
    assert et.pair_loss([0.5, 0.5, 0.5], e) == (3.0, 6.0)            # all tied: half
    assert et.pair_loss([0.1, 0.1, 0.3], [1.0, 1.0, 2.0]) == (0.0, 2.0)  # equal expertise: no pair
    assert et.expertise_loss([([1, 2, 3], e), ([3, 2, 1], e)]) == pytest.approx(0.5)
    assert et.expertise_loss([([0, 0, 0], e), ([0, 0], [3.0, 1.0])]) == pytest.approx(0.5)
    # pooled by weight, not averaged per researcher: 0 of 6 and 1 of 1 -> 1/7
    assert et.expertise_loss([([1, 2, 3], e), ([1, 0], [1.0, 2.0])]) == pytest.approx(1 / 7)


def test_topic_selection_merges_spellings_and_drops_digits_and_single_words(monkeypatch):
    names = ["social-networks", "social_networks", "Social--Networks", "networks", "web-2-0",
             "gene_expression", "rare-topic", "a-b2"]
    docs = [[0], [1], [2], [3, 5], [4, 5], [5], [6]] + [[0, 5]] * 40 + [[1]] * 5
    monkeypatch.setattr(et, "TOPIC_MIN_PAPERS", 3)
    both = et.select_topics(names, docs, "tune") + et.select_topics(names, docs, "report")
    phrases = {p: set(r.tolist()) for p, r in both}
    assert set(phrases) == {"social networks", "gene expression"}     # rare-topic: < 3 papers
    assert phrases["social networks"] == {0, 1, 2} | set(range(7, 47)) | set(range(47, 52))
    tune = et.select_topics(names, docs, "tune")
    assert [p for p, _ in tune] == ["social networks"]                 # position 0: the largest
    with pytest.raises(ValueError):
        et.select_topics(names, docs, "test")


def test_run_expertise_on_tiny_data(tmp_path):
    write_expertise(tmp_path)
    results, meta = et.run_expertise(tmp_path / "reviewer-expertise-dev", fake_embed)
    assert set(results) == set(et.EXPERTISE_METHODS)
    assert all(set(v) == {"loss"} and 0.0 <= v["loss"] <= 1.0 for v in results.values())
    assert results["constant"]["loss"] == pytest.approx(0.5)
    # each researcher knows their own topic best, which the content methods see
    assert results["max-cosine"]["loss"] < 0.5 and results["paperbot"]["loss"] < 0.5
    assert meta["researchers"] == 3 and meta["rated_papers"] == 18
    assert set(meta["paperbot_minus"]) == set(et.EXPERTISE_METHODS) - {"paperbot"}
    diff = meta["paperbot_minus"]["constant"]["loss"]
    assert diff["diff"] == pytest.approx(results["paperbot"]["loss"] - 0.5, abs=1e-4)
    assert diff["se"] >= 0.0


def test_run_topic_on_tiny_data(tmp_path, monkeypatch):
    folder = write_citeulike(tmp_path, n=80)
    monkeypatch.setattr(et, "TOPIC_MIN_PAPERS", 10)
    results, meta = et.run_topic(folder, fake_embed)
    tune, _ = et.run_topic(folder, fake_embed, half="tune")
    # 4 phrases (graph neural network merged from two spellings) -> 2 per half
    assert meta["topics"] == 2 and meta["papers"] == 80
    for res in (results, tune):
        assert set(res) == set(et.TOPIC_METHODS)
        for metrics in res.values():
            assert set(metrics) == set(et.TOPIC_METRICS)
            assert all(0.0 <= v <= 1.0 for v in metrics.values())
    # 20 papers per topic, every one says the phrase: top 50 holds all of them
    assert results["bm25"]["recall@50"] == pytest.approx(1.0)
    assert results["paperbot"]["ndcg@10"] == pytest.approx(1.0)
    table = et.format_task_table("topics", results, et.TOPIC_METRICS,
                                 paired=meta["paperbot_minus"])
    assert "paperbot" in table and "*" in table


class _FakeRecommender:
    embed_texts = staticmethod(fake_embed)


@contextlib.contextmanager
def _fake_open():
    yield _FakeRecommender()


def test_cli_eval_expertise_json_and_missing_folders(tmp_path, monkeypatch):
    # The CLI's Recommender needs Redis and the real model; the evaluation only uses its
    # embed_texts, so a fake one stands in.
    monkeypatch.setattr(command, "open_recommender", _fake_open)
    write_expertise(tmp_path)
    runner = CliRunner()
    out = runner.invoke(cli.main, ["eval", "--tasks", "expertise", "--data", str(tmp_path),
                                   "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert set(data) == {"expertise"}
    assert set(data["expertise"]) == set(et.EXPERTISE_METHODS)
    assert "expertise:" in out.stderr and " s" in out.stderr

    table = runner.invoke(cli.main, ["eval", "--tasks", "expertise,topic", "--data",
                                     str(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "skipping the topic task" in table.stderr
    assert "lower is better" in table.stdout and "paperbot" in table.stdout

    bad = runner.invoke(cli.main, ["eval", "--tasks", "nope", "--data", str(tmp_path)])
    assert bad.exit_code == 1 and "unknown task" in bad.stderr
    none = runner.invoke(cli.main, ["eval", "--tasks", "citeulike", "--data", str(tmp_path)])
    assert none.exit_code == 1 and "no CiteULike data" in none.stderr


def test_neighbour_scores_and_citeulike_runs_them():
    from evaluation import citeulike as ev

    sims = np.array([[0.1, 0.9, 0.5, 0.3], [0.2, 0.2, 0.2, 0.8]])
    np.testing.assert_allclose(ev.neighbour_scores(sims, 1), [0.9, 0.8])
    np.testing.assert_allclose(ev.neighbour_scores(sims, 3), [(0.9 + 0.5 + 0.3) / 3, 0.4])
    np.testing.assert_allclose(ev.neighbour_scores(sims[:, :2], 3), [0.5, 0.2])  # fewer: all
    assert {"max-cosine", "top3-mean"} <= set(ev.METHODS)


def test_eval_without_scikit_learn_says_how_to_install_it(tmp_path):
    # A runtime install has no scikit-learn (it is the `eval` extra); `sys.modules[name] = None`
    # is how Python itself marks a module as not importable.
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['sklearn'] = None; "
         "from bot.cli import main; main()", "eval", "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip() == "paperbot eval needs scikit-learn: pip install 'paperbot[eval]'"
