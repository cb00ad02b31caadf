"""The optional TL;DR (issue 18): written by a local fake OpenAI-compatible server
(testkit/fake_llm.py) over HTTP; each failure (slow, 429, malformed, down) costs only that
paper's TL;DR; the daily budget; `paperbot ingest` and `serve`'s ingest round; the cards."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from bot.ingest_loop import IngestLoop, IngestSettings
from bot.render_text import render_result
from bot.slack.render import paper_blocks
from recommender.config import LlmSettings, Settings
from recommender.paper import Paper, Result
from recommender.tldr import TldrWriter, clean
from testkit.fake_llm import FakeLlm
from testkit.ports import free_port

ABSTRACT = ("We study a problem with care and report a measured result on three public "
            "benchmarks, with code and data released.")


def papers(*titles: str, abstract: str = ABSTRACT) -> list[Paper]:
    return [Paper.from_dict({"id": f"2612.{n:05d}", "title": t, "abstract": abstract,
                             "published": "2026-12-01"}) for n, t in enumerate(titles, 1)]


def llm(url: str, **kw) -> LlmSettings:
    return LlmSettings(**{"url": url, "model": "qwen2.5:0.5b", "timeout": 0.5, **kw})


def tldrs(rec, ids) -> list[str | None]:
    return [p.tldr for p in rec.store.get_papers(ids)]


@pytest.mark.parametrize("answer, expected", [
    ("TL;DR: A model that learns.", "A model that learns."),
    ('"A model that learns."', "A model that learns."),
    ("**TLDR**: A model\n that learns.", "A model that learns."),
    ("<think>The user wants…\n</think>\nA model that learns.", "A model that learns."),
    ("   ", None),
    ("x" * 400, "x" * 299 + "…"),
])
def test_an_answer_becomes_one_clean_line(answer, expected):
    assert clean(answer) == expected


def test_each_failure_costs_only_that_papers_tldr(rec):
    batch = papers("Sparse attention for long documents", "A slow but exact solver",
                   "A busy benchmark of retrieval", "A broken tokenizer study",
                   "An empty result on graphs", "Contrastive pretraining for speech")
    untouched = Paper.from_dict({"id": "2612.00099", "title": "A title alone", "abstract": ""})
    rec.add_papers(batch + [untouched])
    ids = [p.id for p in batch]
    with FakeLlm(slow_s=2.0, busy_times=1) as server:
        writer = TldrWriter(rec.store, llm(server.url, key="sk-test-123", language="German"))
        counts = writer.write(ids + [untouched.id])
        writer.close()
    assert (counts.written, counts.failed, counts.over_budget) == (3, 3, 0)
    got = dict(zip(ids, tldrs(rec, ids)))
    assert got["2612.00001"] == "The paper sparse attention for long documents shows a clear, measured gain."
    assert got["2612.00003"].startswith("The paper a busy benchmark")   # the 429 was retried
    assert got["2612.00002"] is got["2612.00004"] is got["2612.00005"] is None
    assert got["2612.00006"] is not None
    assert rec.get_paper(untouched.id).tldr is None                # no abstract: never asked
    assert server.tries["A busy benchmark of retrieval"] == 2
    sent = server.requests[0]
    assert sent["headers"]["Authorization"] == "Bearer sk-test-123"
    assert sent["body"]["model"] == "qwen2.5:0.5b" and "in German" in sent["body"]["messages"][0]["content"]
    assert all(r["body"]["messages"][0]["content"].count("A title alone") == 0 for r in server.requests)


def test_a_long_retry_after_gives_up_at_once_and_a_server_down_fails_each(rec, caplog):
    batch = papers("A busy corpus", "Another busy corpus")
    rec.add_papers(batch)
    with FakeLlm(busy_times=99, retry_after="3600") as server:
        counts = TldrWriter(rec.store, llm(server.url)).write([p.id for p in batch])
    assert counts.failed == 2 and sum(server.tries.values()) == 2   # no hour-long wait
    down = TldrWriter(rec.store, llm(f"http://127.0.0.1:{free_port()}/v1")).write([p.id for p in batch])
    assert (down.written, down.failed) == (0, 2)
    assert "the model server could not be reached" in caplog.text
    assert "sk-" not in caplog.text


def test_the_daily_budget_is_shared(rec):
    batch = papers("One", "Two", "Three", "Four")
    rec.add_papers(batch)
    with FakeLlm() as server:
        first = TldrWriter(rec.store, llm(server.url, daily_budget=3, concurrency=1)).write(
            [p.id for p in batch[:2]])
        second = TldrWriter(rec.store, llm(server.url, daily_budget=3, concurrency=1)).write(
            [p.id for p in batch[2:]])
    assert (first.written, second.written, second.over_budget) == (2, 1, 1)
    assert len(server.requests) == 3


def test_a_tldr_is_kept_only_for_the_text_it_summarised(rec):
    [paper] = papers("Sparse attention for long documents")
    rec.add_papers([paper])
    changed = dataclasses.replace(paper, abstract=ABSTRACT + " A second version.")
    rec.add_papers([changed])
    assert not rec.store.set_tldr(paper.id, paper.content_hash, "stale")
    assert rec.store.set_tldr(paper.id, changed.content_hash, "fresh")
    assert rec.get_paper(paper.id).tldr == "fresh"
    rec.add_papers([changed])                          # the same text again: kept
    assert rec.get_paper(paper.id).tldr == "fresh"
    rec.add_papers([paper])                            # the text changed: dropped
    assert rec.get_paper(paper.id).tldr is None


def test_cards_show_a_tldr_and_nothing_without_one():
    [paper] = papers("Sparse attention for long documents")
    without = Result(paper, 0.5, "matches your topic")
    assert "TL;DR" not in render_result(1, without)
    assert "TL;DR" not in json.dumps(paper_blocks(without))
    paper.extras["tldr"] = "Sparse attention reads long documents at a tenth of the cost."
    shown = render_result(1, Result(paper, 0.5, "matches your topic"))
    assert "TL;DR: Sparse attention reads long documents at a tenth of the cost." in shown
    assert "TL;DR: Sparse attention reads" in json.dumps(paper_blocks(Result(paper, 0.5, "x")))
    from bot.discord_bot.render import paper_embed

    assert "Sparse attention reads long documents" in paper_embed(Result(paper, 0.5, "x")).description


async def test_serves_ingest_round_writes_them_after_the_papers(rec, tmp_path):
    source = tmp_path / "new.jsonl"
    source.write_text("\n".join(json.dumps(p.to_dict()) for p in papers("Graph rewiring", "Speech units")))
    with FakeLlm() as server:
        rec.settings = dataclasses.replace(rec.settings, llm=llm(server.url))
        summary = await IngestLoop(rec, IngestSettings(sources=(str(source),)), "replica-a").ingest_now()
    assert summary["tldr"] == {"written": 2, "failed": 0, "over_budget": 0}
    assert all(tldrs(rec, ["2612.00001", "2612.00002"]))
    rec.settings = Settings()
    quiet = await IngestLoop(rec, IngestSettings(sources=(str(source),)), "replica-a").ingest_now()
    assert quiet["tldr"] is None                            # no model configured: nothing at all


def run_cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_paperbot_ingest_writes_them_before_it_exits(cli_env, tmp_path):
    source = tmp_path / "new.jsonl"
    source.write_text("\n".join(json.dumps(p.to_dict()) for p in papers(
        "Graph rewiring for long-range message passing", "A broken speech tokenizer")))
    with FakeLlm() as server:
        env = {**cli_env, "PAPERBOT_LLM_URL": server.url, "PAPERBOT_LLM_MODEL": "qwen2.5:0.5b"}
        skipped = run_cli(env, "ingest", "--no-tldr", "--json", str(source))
        assert json.loads(skipped.stdout)["tldr"] is None and not server.requests
        done = run_cli(env, "ingest", str(tmp_path / "more.jsonl"), str(source))
        assert done.returncode == 1                          # more.jsonl does not exist
        assert "TL;DRs: 1 written · 1 failed" in done.stdout  # the broken answer costs its own
        source.write_text(source.read_text().replace("Graph rewiring", "Graph rewiring, revised"))
        done = run_cli(env, "ingest", "--json", str(source))  # a changed text: a new TL;DR
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tldr"] == {"written": 1, "failed": 1, "over_budget": 0}
    found = json.loads(run_cli(cli_env, "search", "graph rewiring message passing", "--json").stdout)
    assert found[0]["tldr"].startswith("The paper graph rewiring, revised")
    other = json.loads(run_cli(cli_env, "search", "speech tokenizer", "--json").stdout)
    assert "tldr" in other[0] and other[0]["tldr"] is None
    bad = run_cli({**cli_env, "PAPERBOT_LLM_URL": "ollama"}, "ingest", str(source))
    assert bad.returncode == 1 and "PAPERBOT_LLM_URL must be an http(s) URL" in bad.stderr
