"""Import and export of a person's library: a real Zotero-style .bib of twenty entries, RIS,
Zotero CSV and id lists; BibTeX out that a BibTeX parser reads back; the CLI, the console, the
fake Slack and the fake Discord. Real Redis, the real model, a fake arXiv API on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import socket
import warnings
from pathlib import Path

import bibtexparser
import pytest

from bot.commands import parse
from bot.console import ConsoleSession
from recommender.config import SourceEndpoints
from recommender.library import (FOREIGN_DOI, NO_ABSTRACT, NOT_ON_ARXIV, UNREACHABLE, arxiv_lookup,
                                 import_library, saved_papers)
from recommender.library_formats import parse_library, to_bibtex, to_csv, to_ris
from recommender.paper import Paper, title_id
from testkit.fake_sources import FakeSourceServer, Reply

from test_cli import paperbot

with warnings.catch_warnings():   # discord.py's voice module imports the deprecated audioop
    warnings.simplefilter("ignore", DeprecationWarning)
    from test_discord import RunningBot

FIXTURES = Path(__file__).parent / "fixtures" / "library"
ZOTERO_BIB = FIXTURES / "zotero_20.bib"
LOOKED_UP = "2503.11995"          # the fixture's entry without an abstract
SKIPPED = "bishopPatternRecognitionMachine2006"
PERSON = "console:local:ana"
TRICKY = Paper(id="2401.01234", title="Braces {and} 100% & #hash in a title",
               abstract="A lone } closes, a lone { opens, 50% of $\\mathcal{O}(n)$ runs & more",
               authors=["Zoë Müller", "Wei Zhang"], categories=["cs.LG"],
               published=dt.date(2024, 1, 2), url="https://arxiv.org/abs/2401.01234")


@pytest.fixture
def arxiv():
    """A fake arXiv API that knows the one paper of the fixture without an abstract."""
    with FakeSourceServer() as server:
        server.route("/api/query", Reply(body=(FIXTURES / "arxiv_lookup.xml").read_bytes()))
        yield server


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/query"


def point_at(rec, url: str) -> None:
    """Chat lookups go to `url` (what ARXIV_API_URL sets for `paperbot serve`)."""
    rec.settings = dataclasses.replace(rec.settings, sources=SourceEndpoints(arxiv_api=url))


def store_known(rec) -> list[str]:
    """Two arXiv papers paperbot has before the import."""
    second = Paper(id="2401.00999", title="Graph neural networks for molecules",
                   abstract="Message passing on molecular graphs.", authors=["Ana Lima"])
    rec.add_papers([TRICKY, second])
    return [TRICKY.id, second.id]


def saved_ids(rec, person: str = PERSON) -> set[str]:
    return {p.id for p in saved_papers(rec.people, rec.store, person)}


# -- formats --------------------------------------------------------------------------------
def test_the_zotero_bib_is_read_with_arxiv_ids_from_every_field_zotero_uses():
    entries = parse_library(ZOTERO_BIB.read_text(), ZOTERO_BIB.name)
    assert len(entries) == 20
    by_key = {e.label: e for e in entries}
    ids = [e.arxiv_id for e in entries if e.arxiv_id]
    assert len(ids) == 18 and len(set(ids)) == 18
    assert by_key["dincsafe2025"].arxiv_id == "2503.11742"            # eprint + archivePrefix
    assert by_key["awaisa2025"].arxiv_id == "2503.11906"              # url / note
    assert by_key["zhanggenerating2025"].arxiv_id == "2503.11930"     # doi 10.48550/arXiv.…
    assert by_key["yudesign2025"].arxiv_id == "2503.11935"            # eprinttype, versioned
    assert by_key["awaisa2025"].title == "A Survey on SAR ship classification using Deep Learning"
    assert "M{" not in " ".join(by_key["engelchallenges2025"].authors)
    assert "Zoë Müller" in by_key["engelchallenges2025"].authors      # LaTeX accents decoded
    assert "12% at $\\mathcal{O}(n \\log n)$" in by_key["zhoualeveraging2025"].abstract
    assert by_key["lecunDeepLearning2015"].arxiv_id is None
    assert by_key["lecunDeepLearning2015"].doi == "10.1038/nature14539"
    assert by_key[SKIPPED].abstract == "" and by_key[SKIPPED].arxiv_id is None


def test_ris_csv_and_id_lists_are_read():
    ris = ("TY  - PREPRINT\nTI  - Attention Is All You Need\nAU  - Vaswani, Ashish\n"
           "AU  - Shazeer, Noam\nAB  - The dominant sequence transduction models.\nPY  - 2017\n"
           "DO  - 10.48550/arXiv.1706.03762\nUR  - http://arxiv.org/abs/1706.03762\n"
           "N1  - arXiv:1706.03762 [cs]\nER  - \n\nTY  - JOUR\nTI  - Deep learning\n"
           "AB  - Deep learning allows models.\nDO  - 10.1038/nature14539\nER  - \n")
    first, second = parse_library(ris, "my.ris")
    assert (first.arxiv_id, first.title, first.authors) == (
        "1706.03762", "Attention Is All You Need", ["Ashish Vaswani", "Noam Shazeer"])
    assert (second.arxiv_id, second.doi) == (None, "10.1038/nature14539")
    csv_text = ('"Key","Item Type","Publication Year","Author","Title","Url","Abstract Note","DOI","Extra"\n'
                '"ABCD1234","preprint","2024","Doe, Jane; Roe, R.","A Paper","","Its abstract.","",'
                '"arXiv: 2401.01234"\n')
    (row,) = parse_library(csv_text, "Exported Items.csv")
    assert (row.arxiv_id, row.authors, row.year) == ("2401.01234", ["Jane Doe", "R. Roe"], "2024")
    listed = parse_library("2401.01234\nhttps://arxiv.org/pdf/2312.00001v2 arXiv:hep-th/9901001,"
                           " 10.48550/arXiv.2503.11685 10.1038/nature14539 banana")
    assert [e.arxiv_id for e in listed] == ["2401.01234", "2312.00001", "hep-th/9901001",
                                            "2503.11685", None, None]
    assert listed[-1].problem and not listed[-2].problem


def test_exports_read_back_by_a_bibtex_parser_and_by_paperbot():
    twin = dataclasses.replace(TRICKY, id="2401.01235", title="Braces and more, again", url="",
                               abstract="Same first author and year: another key.")
    other = Paper(id=title_id("Deep Learning"), title="Deep Learning", abstract="Nature review.",
                  authors=["Yann LeCun"], extras={"doi": "10.1038/nature14539"})
    papers = [TRICKY, twin, other]
    text = to_bibtex(papers)
    library = bibtexparser.parse_string(text)
    assert library.failed_blocks == []
    keys = [e.key for e in library.entries]
    assert len(keys) == 3 and len(set(keys)) == 3 and keys[0] == "muller2024braces"
    assert library.entries[0]["eprint"] == "2401.01234"
    assert library.entries[0]["archivePrefix"] == "arXiv"
    assert library.entries[0]["primaryClass"] == "cs.LG"
    assert "%" not in text.replace("\\%", "")             # every % escaped: none starts a comment
    # BibTeX counts every brace, escaped or not: each field's braces balance
    for entry in library.entries:
        for field in entry.fields:
            depth = 0
            for ch in field.value:
                depth += {"{": 1, "}": -1}.get(ch, 0)
                assert depth >= 0
            assert depth == 0, field.value
    back = parse_library(text, "saved.bib")
    assert [(e.arxiv_id, e.title) for e in back] == [
        ("2401.01234", "Braces and 100% & #hash in a title"), ("2401.01235", twin.title),
        (None, "Deep Learning")]
    assert back[0].abstract == TRICKY.abstract
    assert back[2].doi == "10.1038/nature14539"
    assert [(e.arxiv_id, e.title) for e in parse_library(to_ris(papers), "x.ris")] == [
        (p.arxiv_id, p.title) for p in papers]
    assert [(e.arxiv_id, e.abstract) for e in parse_library(to_csv(papers), "x.csv")] == [
        (p.arxiv_id, p.abstract) for p in papers]


# -- import ---------------------------------------------------------------------------------
def test_a_zotero_library_of_twenty_becomes_saved_papers(rec, arxiv):
    entries = parse_library(ZOTERO_BIB.read_text(), ZOTERO_BIB.name)
    first = entries[0]
    rec.add_papers([Paper.from_dict({**first.paper_dict(), "title": "Stored before"})])
    lookup = arxiv_lookup(SourceEndpoints(arxiv_api=arxiv.url("/api/query")), min_interval=0)
    report = import_library(rec, PERSON, entries, lookup)
    assert report.known == ["2503.11742"]
    assert len(report.imported) == 18 and LOOKED_UP in report.imported
    assert title_id("Deep Learning") in report.imported
    assert report.skipped == [(SKIPPED, NO_ABSTRACT)]
    (request,) = arxiv.requests_to("/api/query")
    assert request.query["id_list"] == [LOOKED_UP]        # only the one the file has no text for
    assert saved_ids(rec) == {*report.imported, *report.known}
    assert rec.get_paper("2503.11742").title == "Stored before"    # a known paper is kept
    assert rec.get_paper(LOOKED_UP).abstract.startswith("In recent years, Transformer")
    assert rec.get_paper(title_id("Deep Learning")).extras["doi"] == "10.1038/nature14539"
    assert rec.profile(PERSON)["counts"]["save"] == 19
    hits = rec.search("crowd counting and localization", k=1)
    assert hits[0].paper.id == "2503.12061"               # stored and indexed, searchable
    again = import_library(rec, PERSON, entries, lookup)
    assert (len(again.imported), len(again.known)) == (0, 19)


def test_ids_arxiv_cannot_give_are_skipped_with_the_reason(rec, demo, arxiv):
    known = store_known(rec)[0]
    down = arxiv_lookup(SourceEndpoints(arxiv_api=closed_port_url()), deadline=5, attempts=1)
    report = import_library(rec, PERSON, parse_library(f"{known} {LOOKED_UP} 10.1038/x1 banana"),
                            down)
    assert report.known == [known] and report.imported == []
    assert dict(report.skipped) == {LOOKED_UP: UNREACHABLE, "10.1038/x1": FOREIGN_DOI,
                                    "banana": "not an arXiv id, arXiv link or DOI"}
    up = arxiv_lookup(SourceEndpoints(arxiv_api=arxiv.url("/api/query")), min_interval=0)
    report = import_library(rec, PERSON, parse_library("2503.99999"), up)
    assert report.skipped == [("2503.99999", NOT_ON_ARXIV)]


def test_cli_import_json_and_export(cli_env, rec, arxiv, tmp_path):
    env = {**cli_env, "ARXIV_API_URL": arxiv.url("/api/query")}
    out = paperbot("import", "--user", PERSON, str(ZOTERO_BIB), "--json", env=env).stdout
    report = json.loads(out)
    assert set(report) == {"imported", "known", "skipped"}
    assert len(report["imported"]) == 19 and report["known"] == []
    assert report["skipped"] == [{"entry": SKIPPED, "reason": NO_ABSTRACT}]
    text = paperbot("import", "--user", PERSON, str(ZOTERO_BIB), "--offline", env=env).stdout
    assert text.splitlines()[-1].startswith("0 imported · 19 already known · 1 skipped")
    assert f"skipped {SKIPPED}: {NO_ABSTRACT}" in text
    bib = paperbot("export", "--user", PERSON, "--format", "bibtex", env=env).stdout
    library = bibtexparser.parse_string(bib)
    assert library.failed_blocks == [] and len(library.entries) == 19
    assert len({e.key for e in library.entries}) == 19
    lecun = library.entries_dict["lecun2015deep"]           # a year alone survives the trip
    assert (lecun["year"], lecun["doi"]) == ("2015", "10.1038/nature14539")
    assert "eprint" not in lecun
    assert {e["eprint"] for e in library.entries if "eprint" in e} == set(report["imported"]) - {
        title_id("Deep Learning")}
    paperbot("export", "--user", PERSON, "--format", "ris", "-o", str(tmp_path / "s.ris"), env=env)
    assert len(parse_library((tmp_path / "s.ris").read_text(), "s.ris")) == 19
    csv_out = paperbot("export", "--user", PERSON, "--format", "csv", env=env).stdout
    assert {e.arxiv_id for e in parse_library(csv_out, "s.csv")} - {None} == set(
        report["imported"]) - {title_id("Deep Learning")}
    missing = paperbot("import", "--user", PERSON, str(tmp_path / "nope.bib"), env=env, check=False)
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr


# -- chat -----------------------------------------------------------------------------------
def test_the_grammar_takes_up_to_fifty_ids():
    assert parse("import 2401.01234 https://arxiv.org/abs/2312.00001").name == "import"
    too_many = parse("import " + " ".join(f"2401.{n:05d}" for n in range(51)))
    assert too_many.name == "help" and "at most 50" in too_many.note
    assert parse("import").note.startswith("`import` needs arXiv ids")
    assert parse("saved bibtex").name == "saved bibtex"
    assert parse("saved").name == "saved"


def test_console_import_and_saved_bibtex(rec, demo, arxiv):
    point_at(rec, arxiv.url("/api/query"))
    known = store_known(rec)[0]
    console = ConsoleSession(rec, user="ana")
    answer = console.handle(f"import {known} https://arxiv.org/abs/{LOOKED_UP}v1 banana")
    assert answer.splitlines()[0] == "🔖 Saved 2 papers: 1 imported · 1 already known · 1 skipped."
    assert "banana — not an arXiv id" in answer
    assert saved_ids(rec) == {known, LOOKED_UP}
    bib = console.handle("saved bibtex")
    library = bibtexparser.parse_string(bib[bib.index("@"):])
    assert {e["eprint"] for e in library.entries} == {known, LOOKED_UP}


async def test_slack_import_and_saved_bibtex(slack_h, rec, demo, arxiv):
    point_at(rec, closed_port_url())    # arXiv is down: the id paperbot lacks is skipped
    known = store_known(rec)
    await slack_h.command(f"import <https://arxiv.org/abs/{known[0]}> {known[1]} {LOOKED_UP}", "imp")
    body = await slack_h.answer("imp")
    assert body["response_type"] == "ephemeral"
    text = "\n".join(b["text"]["text"] for b in body["blocks"])
    assert "🔖 Saved 2 papers: 0 imported · 2 already known · 1 skipped." in text
    assert f"{LOOKED_UP} — {UNREACHABLE}" in text
    person = "slack:T0PAPERS:UALICE"
    assert saved_ids(rec, person) == set(known)
    await slack_h.command("saved bibtex", "bib")
    body = await slack_h.answer("bib")
    code = [b["text"]["text"] for b in body["blocks"] if b["text"]["type"] == "mrkdwn"]
    assert code and all(c.startswith("```") and c.endswith("```") for c in code)
    bib = "\n\n".join(c.strip("`") for c in code).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    library = bibtexparser.parse_string(bib)
    assert library.failed_blocks == []
    assert {e["eprint"] for e in library.entries} == set(known)
    await slack_h.command("import " + " ".join(["2401.01234"] * 51), "many")
    assert "at most 50" in (await slack_h.answer("many"))["blocks"][0]["text"]["text"]


async def test_discord_import_and_saved_bibtex_as_a_file(discord_servers, rec, demo, arxiv):
    from testkit.fake_discord_files import FilesFakeDiscord

    fake = await discord_servers(kind=FilesFakeDiscord)
    point_at(rec, arxiv.url("/api/query"))
    bot = await RunningBot(fake, rec, guild_id=fake.guild_id).start()
    try:
        await fake.wait_for(lambda: str(fake.guild_id) in fake.commands)
        [papers] = fake.commands[str(fake.guild_id)]
        subcommands = {o["name"]: o for o in papers["options"]}
        [fmt] = subcommands["saved"]["options"]
        assert fmt["name"] == "format" and fmt.get("required") is not True
        assert {c["value"] for c in fmt["choices"]} == {"list", "bibtex"}
        [ids] = subcommands["import"]["options"]
        assert ids["name"] == "ids" and ids["max_length"] == 6000
        known = store_known(rec)[0]
        exchange = await fake.interact(fake.slash("import", ids=f"{known} {LOOKED_UP}"))
        await fake.wait_for(lambda: "Saved" in exchange.text)
        assert "🔖 Saved 2 papers: 1 imported · 1 already known · 0 skipped." in exchange.text
        person = f"discord:{fake.guild_id}:1001"
        assert saved_ids(rec, person) == {known, LOOKED_UP}
        exchange = await fake.interact(fake.slash("saved", format="bibtex"))
        await fake.wait_for(lambda: any(m["attachments"] for m in exchange.visible))
        (attachment,) = [a for m in exchange.visible for a in m["attachments"]]
        assert attachment["filename"] == "paperbot-saved.bib"
        library = bibtexparser.parse_string(attachment["content"])
        assert {e["eprint"] for e in library.entries} == {known, LOOKED_UP}
        assert all(m["flags"] & (1 << 6) for m in exchange.visible)   # only the asker sees it
    finally:
        await bot.close()
