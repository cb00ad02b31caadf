"""The `paperbot` command as a person runs it: real processes, real Redis, real model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from testkit.fake_sources import FakeSourceServer, fixture_reply

SAMPLE = Path(__file__).parent / "fixtures" / "sources" / "daily_arxiv_sample.jsonl.gz"


def paperbot(*args: str, env: dict[str, str], stdin: str | None = None, check: bool = True):
    proc = subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=240)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_ingest_search_similar_json(cli_env):
    first = json.loads(paperbot("ingest", str(SAMPLE), "--json", env=cli_env).stdout)
    assert first == {"read": 5, "new": 5, "embedded": 5, "sources": [
        {"source": str(SAMPLE), "status": "ok", "read": 5, "new": 5, "embedded": 5}],
        "tldr": None}   # no model configured: no TL;DR pass
    again = json.loads(paperbot("ingest", str(SAMPLE), "--json", env=cli_env).stdout)
    assert {k: again[k] for k in ("read", "new", "embedded")} == {"read": 5, "new": 0, "embedded": 0}

    hits = json.loads(paperbot("search", "hardware accelerator for neural networks", "-k", "3",
                               "--json", env=cli_env).stdout)
    assert 1 <= len(hits) <= 3   # only the close matches among five papers
    assert {"id", "title", "url", "score", "why"} <= set(hits[0])
    assert hits[0]["title"] == "CORDIC Is All You Need"
    assert hits[0]["url"] == "https://arxiv.org/abs/2503.11685"
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    similar = json.loads(paperbot("similar", "arXiv:2503.11685v2", "--json", env=cli_env).stdout)
    assert len(similar) == 4 and "2503.11685" not in {h["id"] for h in similar}

    unknown = paperbot("similar", "2999.00001", env=cli_env, check=False)
    assert unknown.returncode == 1 and "don't know the paper" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_ingest_an_arxiv_listing_through_the_network_client(cli_env):
    with FakeSourceServer() as server:
        server.route("/rss/cs.LG", fixture_reply("arxiv_rss_cs_LG.xml"))
        env = {**cli_env, "ARXIV_RSS_URL": server.url("/rss")}
        counts = json.loads(paperbot("ingest", "arxiv:cs.LG", "--json", env=env).stdout)
        assert counts["read"] > 0 and counts["new"] == counts["read"] == counts["embedded"]
        server.route("/rss/cs.CL", fixture_reply("arxiv_rss_cs_LG.xml", status=404))
        failed = paperbot("ingest", "arxiv:cs.CL", env=env, check=False)
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[0].startswith("arxiv:cs.CL: failed — ")
    assert "HTTP 404" in failed.stdout and "Traceback" not in failed.stderr


def test_ingest_tries_every_source_and_reports_each(cli_env, rec):
    # The rough edge of issue 15: `ingest arxiv:cs.LG hf-daily my.jsonl` stopped at the first
    # source that failed, and the local file after it was never stored.
    with FakeSourceServer() as server:
        server.route("/rss/cs.LG", fixture_reply("arxiv_rss_cs_LG.xml"))
        server.route("/api/daily_papers", fixture_reply("hf_daily_2024-01-02.json", status=404))
        env = {**cli_env, "ARXIV_RSS_URL": server.url("/rss"),
               "HF_API_URL": server.url("/api/daily_papers")}
        run = paperbot("ingest", "arxiv:cs.LG", "hf-daily", "missing.jsonl", str(SAMPLE),
                       env=env, check=False)
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 5, run.stdout
    listed = int(re.fullmatch(r"arxiv:cs\.LG: (\d+) papers \(\1 new\)", lines[0]).group(1))
    assert listed > 0
    assert lines[1].startswith("hf-daily: failed — ") and "HTTP 404" in lines[1]
    assert lines[2].startswith("missing.jsonl: failed — ") and "no such file" in lines[2]
    assert lines[3] == f"{SAMPLE}: 5 papers (5 new)"
    total = listed + 5
    assert lines[4] == f"read {total} · new {total} · embedded {total} · 2 of 4 sources failed"
    assert "Traceback" not in run.stderr
    # the sources after the failures were stored all the same
    assert rec.get_paper("2503.11685").title == "CORDIC Is All You Need"
    assert rec.store.count() == total

    again = json.loads(paperbot("ingest", "missing.jsonl", str(SAMPLE), "--json", env=env,
                                check=False).stdout)
    assert {k: again[k] for k in ("read", "new", "embedded")} == {"read": 5, "new": 0, "embedded": 0}
    missing, sample = again["sources"]
    assert missing["status"] == "failed" and "no such file" in missing["error"]
    assert sample == {"source": str(SAMPLE), "status": "ok", "read": 5, "new": 0, "embedded": 0}

    good = paperbot("ingest", str(SAMPLE), env=env)   # nothing failed: exit 0, no failure count
    assert good.stdout.splitlines()[-1] == "read 5 · new 0 · embedded 0"


def test_plugin_commands_and_a_broken_one(cli_env, tmp_path):
    # bench/ and evaluation/ add their commands through the `paperbot.commands` entry point; a
    # package whose entry point cannot load costs one line, and every other command still works.
    info = tmp_path / "brokenplugin-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplugin\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[paperbot.commands]\nbroken = no_such_module:cmd\n")
    env = {**cli_env, "PYTHONPATH": str(tmp_path)}
    run = paperbot("--help", env=env)
    commands = {line.split()[0] for line in run.stdout.split("Commands:")[1].splitlines() if line}
    assert {"bench", "eval", "ingest", "serve"} <= commands and "broken" not in commands
    assert run.stderr.strip().splitlines() == [
        "paperbot broken is unavailable: No module named 'no_such_module' (no_such_module:cmd)"]
    assert "Options:" in paperbot("bench", "--help", env=env).stdout


def test_unreachable_redis_is_one_clear_line(cli_env):
    env = {**cli_env, "REDIS_URL": "redis://:s3cret-pass@127.0.0.1:1/0"}
    proc = paperbot("search", "anything", env=env, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in lines[0]
    assert "s3cret-pass" not in proc.stderr and "Traceback" not in proc.stderr


def test_embedded_valkey_persists_between_processes(cli_env, tmp_path):
    env = {k: v for k, v in cli_env.items() if k != "REDIS_URL"}
    env["PAPERBOT_DATA_DIR"] = str(tmp_path / "pb")
    assert json.loads(paperbot("ingest", str(SAMPLE), "--json", env=env).stdout)["new"] == 5
    hits = json.loads(paperbot("search", "prosthetic vision", "--json", env=env).stdout)
    assert hits[0]["id"] == "2503.11677"
    assert (tmp_path / "pb" / "appendonlydir").is_dir()


def test_people_commands_and_console_reactions(cli_env):
    alice = "console:local:alice"
    script = "search graph neural networks for molecules\nlike 1\nsubscribe speech recognition\nquit\n"
    console = paperbot("console", "--offline", "--user", "alice", env=cli_env, stdin=script)
    assert "Papers matching" in console.stdout and "👍 More like this." in console.stdout

    profile = json.loads(paperbot("profile", "--user", alice, "--json", env=cli_env).stdout)
    assert profile["counts"]["like"] == 1 and profile["topics"] == ["speech recognition"]
    liked = profile["recent"][0]["paper"]

    picks = json.loads(paperbot("recommend", "--user", alice, "-k", "3", "--json", env=cli_env).stdout)
    assert len(picks) == 3 and liked not in {p["id"] for p in picks}
    assert paperbot("feedback", "--user", alice, liked, "save", env=cli_env).stdout.strip() == "save recorded"

    bad = paperbot("recommend", "--user", "alice", env=cli_env, check=False)
    assert bad.returncode == 1 and "platform:workspace:id" in bad.stderr

    paperbot("forget", "--user", alice, "--yes", env=cli_env)
    after = json.loads(paperbot("profile", "--user", alice, "--json", env=cli_env).stdout)
    assert after["topics"] == [] and after["counts"] == {"like": 0, "dislike": 0, "save": 0}


def test_console_session_never_shows_a_traceback(rec, demo):
    from bot.console import ConsoleSession

    session = ConsoleSession(rec, "bob")
    for line in ["", "   ", "search", "similar nothing-here", "like 1", "x" * 10_000,
                 "channel time 25:00 Mars/Base", "subscribe " + "y" * 500, "forget-me", "\x00\x07"]:
        answer = session.handle(line)
        assert answer and "Traceback" not in answer
    assert "don't know the paper" in session.handle("similar 2999.00001")
    assert "There is no result 1" in session.handle("like 1")
    assert "Papers matching" in session.handle("/papers search speech")
    assert "More like this" in session.handle("like 1")
