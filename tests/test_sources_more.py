"""bioRxiv/medRxiv, journal feeds (RSS, Atom) and OpenReview through the real HTTP client against
local replay servers, and one paper across sources (`recommender.dedupe`)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from bot.actions import Actions, Who
from bot.commands import parse
from recommender.config import Settings
from recommender.paper import Paper, link_id
from recommender.sources import HttpClient, SourceError, read_source
from recommender.sources.biorxiv import fetch_preprints
from recommender.sources.feeds import fetch_feed, strip_html
from recommender.sources.openreview import fetch_venue
from testkit.fake_sources import FIXTURES, FakeSourceServer, Reply, fixture_reply
from testkit.fake_sources_more import BiorxivReplay, OpenReviewReplay, fixture_records

WEEK = "2026-11-01..2026-11-07"
BUSY = {"content_type": "text/plain"}


@pytest.fixture
def server():
    with FakeSourceServer() as fake:
        yield fake


@pytest.fixture
def waits():
    return []


@pytest.fixture
def client(waits):
    """The real client; its waits are recorded instead of slept (Retry-After is asserted)."""
    with HttpClient(timeout=2, connect_timeout=1, backoff_base=0.01, max_wait=30,
                    min_interval=0, sleep=waits.append) as http:
        yield http


def paperbot(*args: str, env: dict[str, str], check: bool = True):
    proc = subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0 or not check, proc.stderr
    return proc


def endpoints(server):
    return Settings.from_env({"PAPERBOT_BIORXIV_URL": server.url(),
                              "PAPERBOT_OPENREVIEW_URL": server.url() + "/"}).sources


def biorxiv(server, records=None, **kwargs):
    replay = BiorxivReplay(records or fixture_records("biorxiv_details.json"), **kwargs)
    server.answer("/details/", replay)
    return replay


def shifted(days_ago: dict[str, int], today: dt.date) -> list[dict]:
    """The recorded records whose DOI is named, re-dated `days_ago` days before `today`."""
    records = [r for r in fixture_records("biorxiv_details.json") if r["doi"] in days_ago]
    return [{**r, "date": (today - dt.timedelta(days=days_ago[r["doi"]])).isoformat()} for r in records]


# ---------------------------------------------------------------- bioRxiv, medRxiv


def test_biorxiv_interval_pages_by_cursor_and_folds_versions(server, client, caplog):
    biorxiv(server, page=2)
    papers = list(read_source(f"biorxiv:cell_biology:{WEEK}", client, endpoints=endpoints(server)))

    assert [(r.path, r.query) for r in server.requests] == [
        (f"/details/biorxiv/2026-11-01/2026-11-07/{cursor}", {"category": ["cell_biology"]})
        for cursor in (0, 2, 4)]
    assert [p.id for p in papers] == ["doi:10.1101/2026.10.29.684001", "doi:10.1101/2026.11.01.684512",
                                      "doi:10.1101/2026.11.02.684777"]   # no other subject, no v1 twice
    fission, screen, _ = papers
    assert fission.abstract.startswith("Lysosomes move toward the leading edge") and "\n" not in fission.abstract
    assert fission.authors == ["Okafor, C.", "Lindqvist, M.", "Tanaka, H.", "Singh, P."]   # v2's
    assert fission.published == dt.date(2026, 11, 5)
    assert fission.url == "https://www.biorxiv.org/content/10.1101/2026.10.29.684001v2"
    assert fission.pdf_url == "https://www.biorxiv.org/content/10.1101/2026.10.29.684001v2.full.pdf"
    assert fission.arxiv_id is None and ("PDF", fission.pdf_url) in fission.links()
    assert fission.categories == ["cell biology"] and fission.source == "biorxiv"
    assert fission.extras["version"] == 2 and "published_doi" not in fission.extras
    assert screen.extras["published_doi"] == "10.1083/jcb.202611001"
    assert "bioRxiv: skipped 1 record(s) without a DOI or a title" in caplog.text   # the title-less one


def test_medrxiv_is_the_same_api_and_one_day_is_a_span_of_one(server, client):
    biorxiv(server)
    [paper] = read_source("medrxiv:epidemiology:2026-11-04", client, endpoints=endpoints(server))
    assert server.requests[0].path == "/details/medrxiv/2026-11-04/2026-11-04/0"
    assert paper.id == "doi:10.1101/2026.11.02.26301234" and paper.source == "medrxiv"
    assert paper.url == "https://www.medrxiv.org/content/10.1101/2026.11.02.26301234v1"


def test_biorxiv_newest_posting_day_steps_back_over_empty_days(server, client):
    today = dt.date(2026, 12, 7)
    biorxiv(server, shifted({"10.1101/2026.11.01.684512": 2, "10.1101/2026.11.02.684777": 2,
                             "10.1101/2026.10.29.684001": 4}, today))
    papers = fetch_preprints("biorxiv", "cell_biology", None, client, base_url=server.url(), today=today)
    assert [p.id for p in papers] == ["doi:10.1101/2026.11.01.684512", "doi:10.1101/2026.11.02.684777"]
    assert [r.path for r in server.requests] == [
        f"/details/biorxiv/{day}/{day}/0" for day in ("2026-12-07", "2026-12-06", "2026-12-05")]


def test_biorxiv_a_quiet_week_is_empty_not_an_error(server, client):
    biorxiv(server)
    assert fetch_preprints("biorxiv", "cell_biology", None, client, base_url=server.url(),
                           today=dt.date(2026, 12, 7)) == []
    assert len(server.requests) == 7   # LOOK_BACK_DAYS, one request for each empty day


@pytest.mark.parametrize("status", [429, 503])
def test_biorxiv_overload_waits_as_long_as_retry_after_says(server, client, waits, status):
    biorxiv(server, fail_first=[Reply(status, "slow down", {"Retry-After": "7"}, **BUSY)])
    papers = list(read_source(f"biorxiv:cell_biology:{WEEK}", client, endpoints=endpoints(server)))
    assert len(papers) == 3 and waits == [7.0] and len(server.requests) == 2


def test_biorxiv_unavailable_for_good_is_one_line(server, client):
    server.route("/details/biorxiv/2026-11-01/2026-11-07/0", Reply(503, "busy", **BUSY))
    with pytest.raises(SourceError) as caught:
        list(read_source(f"biorxiv:cell_biology:{WEEK}", client, endpoints=endpoints(server)))
    assert str(caught.value) == ("bioRxiv cell_biology for 2026-11-01..2026-11-07 unavailable: "
                                 "HTTP 503 after 4 attempts")


@pytest.mark.parametrize("body, message", [
    ('{"messages": [{"status": "ok"}], "collection": [{"doi": "10.1101/x", "tit', "returned malformed JSON"),
    ('{"messages": [], "collection": {"doi": "10.1101/x"}}', "unexpected answer"),
    ('["not", "an", "object"]', "unexpected answer"),
    ('{"messages": [{"status": "Error with interval"}], "collection": []}', "the API says 'Error with interval'"),
])
def test_biorxiv_malformed_answers_are_source_errors(server, client, body, message):
    server.route("/details/biorxiv/2026-11-01/2026-11-07/0", Reply(body=body, content_type="application/json"))
    with pytest.raises(SourceError, match=f"^bioRxiv cell_biology for 2026-11-01..2026-11-07.*{message}"):
        list(read_source(f"biorxiv:cell_biology:{WEEK}", client, endpoints=endpoints(server)))


@pytest.mark.parametrize("spec, message", [
    ("biorxiv:", "names no subject"),
    ("biorxiv:cell biology", "names no subject"),
    ("medrxiv:../etc", "names no subject"),
    ("biorxiv:cell_biology:2026-11-07..2026-11-01", "is not a date interval"),
    ("biorxiv:cell_biology:last-week", "is not a date interval"),
    ("biorxiv:cell_biology:2026-02-30", "is not a date interval"),
    ("rss:cs.LG", "is not a feed address"),
    ("atom:ftp://example.org/feed", "is not a feed address"),
    ("openreview:ICLR.cc/../admin", "is not an OpenReview venue id"),
    ("openreview:", "is not an OpenReview venue id"),
])
def test_bad_specs_fail_before_any_request(server, client, spec, message):
    with pytest.raises(SourceError, match=message) as caught:
        read_source(spec, client, endpoints=endpoints(server))
    assert "\n" not in str(caught.value) and server.requests == []


def test_base_urls_are_validated_settings():
    with pytest.raises(ValueError, match="^PAPERBOT_BIORXIV_URL must be an http"):
        Settings.from_env({"PAPERBOT_BIORXIV_URL": "api.biorxiv.org"})
    with pytest.raises(ValueError, match="^PAPERBOT_OPENREVIEW_URL must be an http"):
        Settings.from_env({"PAPERBOT_OPENREVIEW_URL": "file:///etc/passwd"})
    default = Settings.from_env({}).sources
    assert (default.biorxiv_api, default.openreview_api) == ("https://api.biorxiv.org",
                                                              "https://api2.openreview.net")


# ---------------------------------------------------------------- journal and PubMed feeds


def test_pubmed_rss_ids_from_dois_else_links_and_abstracts_without_html(server, client, caplog):
    server.route("/rss/search/1AbCdEf", fixture_reply("pubmed_rss2.xml"))
    papers = list(read_source(f"rss:{server.url('/rss/search/1AbCdEf')}?limit=20", client))
    assert server.requests[0].query == {"limit": ["20"]}
    screen, review, mirrored = papers
    assert screen.id == "doi:10.1083/jcb.202611001" and screen.extras["doi"] == "10.1083/jcb.202611001"
    assert screen.abstract == ("Primary cilia are antenna-like organelles & signalling hubs. "
                               "A genome-wide CRISPR screen identifies 41 regulators of cilium length.")
    assert screen.authors == ["Moreau A", "Haddad R"] and screen.published == dt.date(2026, 12, 1)
    assert screen.url.startswith("https://pubmed.ncbi.nlm.nih.gov/41234567/") and screen.source == "rss"
    assert review.id == link_id(review.url)    # no DOI: its link's short hash
    assert mirrored.id == "2611.01234"    # an arXiv link is the arXiv paper
    assert "skipped 1 item(s) without a title" in caplog.text


def test_rss1_rdf_feed_with_prism_doi(server, client):
    server.route("/ncb.rss", fixture_reply("nature_rss1.xml"))
    [paper] = fetch_feed(server.url("/ncb.rss"), client)
    assert paper.id == "doi:10.1038/s41556-026-01234-5"
    assert paper.title == "Mitochondrial fission shapes lysosome positioning in migrating fibroblasts"
    assert paper.abstract.endswith("doi:10.1038/s41556-026-01234-5 Okafor et al. show that "
                                   "DRP1-dependent fission positions lysosomes.")
    assert paper.extras["journal"] == "Nature Cell Biology" and paper.published == dt.date(2026, 12, 3)


def test_atom_feed_doi_link_and_xhtml_summary(server, client):
    server.route("/jcs/feed", fixture_reply("journal_atom.xml"))
    granules, editorial = read_source(f"atom:{server.url('/jcs/feed')}", client)
    assert granules.id == "doi:10.1242/jcs.261234"    # DOIs are case-insensitive: kept lower case
    assert granules.title == "Phase separation of stress granule proteins under osmotic shock"
    assert granules.abstract == "Osmotic shock drives G3BP1 condensation within seconds."
    assert granules.authors == ["Ji-Hoon Kim", "Sofia Alvarez"] and granules.source == "atom"
    assert granules.url == "https://journals.example.org/jcs/article/139/23/jcs261234"
    assert editorial.id.startswith("u:") and editorial.url.endswith("/editorial")


def test_feed_overload_then_answer_and_an_empty_feed(server, client, waits):
    server.route("/feed", Reply(429, "", {"Retry-After": "3"}, **BUSY),
                 Reply(body='<rss version="2.0"><channel><title>quiet</title></channel></rss>'))
    assert list(read_source(f"rss:{server.url('/feed')}", client)) == []
    assert waits == [3.0]


@pytest.mark.parametrize("body, message", [
    ((FIXTURES / "pubmed_rss2.xml").read_bytes()[:900], "returned malformed XML"),
    (b"<html><body>Service unavailable</body></html>", r"is not an RSS or Atom feed \(root element <html>\)"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><rss><channel/></rss>', "returned unsafe XML"),
])
def test_malformed_feeds_are_source_errors(server, client, body, message):
    server.route("/feed", Reply(body=body))
    with pytest.raises(SourceError, match=f"^feed 127.0.0.1:\\d+/feed {message}"):
        list(read_source(f"rss:{server.url('/feed')}", client))


def test_strip_html():
    assert strip_html("<p>a &amp; b</p><p>c<br>d</p><style>p{}</style>") == "a & b c d"
    assert strip_html("no tags, 2 < 3") == "no tags, 2 < 3"


# ---------------------------------------------------------------- OpenReview


def test_openreview_accepted_papers_page_by_offset(server, client, caplog):
    server.answer("/notes", OpenReviewReplay(fixture_records("openreview_notes.json")))
    papers = fetch_venue("ICLR.cc/2025/Conference", client, base_url=server.url(), page=2)
    assert [r.query for r in server.requests] == [
        {"content.venueid": ["ICLR.cc/2025/Conference"], "offset": [str(o)], "limit": ["2"]}
        for o in (0, 2, 4)]
    assert [p.id for p in papers] == ["openreview:Abc123XyZ0", "openreview:Def456UvW1",
                                      "openreview:Jkl012OpQ3", "openreview:Pqr678IjK5"]
    first = papers[0]
    assert first.title == "Scaling Laws for Sparse Mixture-of-Experts Retrieval"
    assert first.authors == ["Ana Silva", "Bo Chen"] and first.published == dt.date(2025, 1, 27)
    assert first.url == "https://openreview.net/forum?id=Abc123XyZ0"
    assert first.pdf_url == "https://openreview.net/pdf?id=Abc123XyZ0" and first.source == "openreview"
    assert first.extras["venue"] == "ICLR 2025 Oral" and first.extras["keywords"] == ["scaling laws", "retrieval"]
    assert papers[2].pdf_url is None    # no PDF in its content
    assert "skipped 1 note(s) without an id or a title" in caplog.text


def test_openreview_through_read_source_unknown_venue_and_overload(server, client, waits):
    server.answer("/notes", OpenReviewReplay(fixture_records("openreview_notes.json"),
                                             fail_first=[Reply(503, "", {"Retry-After": "5"}, **BUSY)]))
    at = endpoints(server)
    assert len(list(read_source("openreview:ICLR.cc/2025/Conference", client, endpoints=at))) == 4
    assert list(read_source("openreview:ICLR.cc/2031/Conference", client, endpoints=at)) == []
    assert waits == [5.0] and server.requests[-1].query["limit"] == ["1000"]


@pytest.mark.parametrize("body", ['{"name": "ForbiddenError", "message": "no"}', "[]", "{not json"])
def test_openreview_malformed_answers_are_source_errors(server, client, body):
    server.route("/notes", Reply(body=body, content_type="application/json"))
    with pytest.raises(SourceError, match="^OpenReview papers of ICLR.cc/2025/Conference"):
        fetch_venue("ICLR.cc/2025/Conference", client, base_url=server.url())


# ---------------------------------------------------------------- one paper across sources


def arxiv_preprint(**extras) -> Paper:
    return Paper.from_dict({"id": "2611.05555", "title": "Mitochondrial Fission Shapes Lysosome "
                            "Positioning in Migrating Fibroblasts", "abstract": "The arXiv text.",
                            "extras": extras}, source="arxiv")


def test_a_journal_version_by_doi_is_the_arxiv_paper(server, client, rec):
    rec.add_papers([arxiv_preprint(doi="10.1038/S41556-026-01234-5")])
    server.route("/ncb.rss", fixture_reply("nature_rss1.xml"))
    counts = rec.add_papers(read_source(f"rss:{server.url('/ncb.rss')}", client))
    assert (counts.read, counts.new) == (1, 0) and len(rec) == 1
    assert rec.get_paper("2611.05555").abstract == "The arXiv text."    # the first stored is kept
    for typed in ("https://doi.org/10.1038/s41556-026-01234-5", "doi:10.1038/s41556-026-01234-5"):
        assert rec.resolve_id(typed) == "2611.05555", typed


def test_a_preprint_and_its_journal_article_by_title_and_published_doi(server, client, rec):
    biorxiv(server)
    first = rec.add_papers(read_source(f"biorxiv:cell_biology:{WEEK}", client, endpoints=endpoints(server)))
    assert first.new == 3
    # the arXiv copy of a bioRxiv preprint, same title in other case: one paper
    assert rec.add_papers([arxiv_preprint()]).new == 0
    # PubMed announces the journal article bioRxiv names as `published`
    server.route("/pubmed", fixture_reply("pubmed_rss2.xml"))
    again = rec.add_papers(read_source(f"rss:{server.url('/pubmed')}", client))
    assert (again.read, again.new) == (3, 2)   # the review and the arXiv mirror are new
    assert rec.resolve_id("10.1083/jcb.202611001") == "doi:10.1101/2026.11.01.684512"
    assert "doi:10.1083/jcb.202611001" not in rec.index and len(rec) == 5


def test_two_arxiv_papers_with_one_title_stay_two(rec):
    twin = Paper.from_dict({"id": "2611.06666", "title": arxiv_preprint().title})
    assert rec.add_papers([arxiv_preprint(), twin]).new == 2


def test_a_new_biorxiv_version_updates_the_same_paper(server, client, rec):
    records = fixture_records("biorxiv_details.json")
    biorxiv(server, [r for r in records if r["version"] == "1"])
    rec.add_papers(read_source("biorxiv:cell_biology:2026-11-02", client, endpoints=endpoints(server)))
    assert rec.get_paper("doi:10.1101/2026.10.29.684001").extras["version"] == 1
    server.answers.clear()
    biorxiv(server, records)
    counts = rec.add_papers(read_source("biorxiv:cell_biology:2026-11-05", client, endpoints=endpoints(server)))
    assert (counts.new, counts.embedded) == (0, 1)
    paper = rec.get_paper("https://www.biorxiv.org/content/10.1101/2026.10.29.684001v1.full")
    assert paper.extras["version"] == 2 and "revised version" in paper.abstract


def test_similar_takes_a_doi_or_a_biorxiv_link_in_chat(server, client, rec):
    biorxiv(server)
    rec.add_papers(read_source(f"biorxiv:cell_biology:{WEEK}", client, endpoints=endpoints(server)))
    actions, who = Actions(rec), Who("slack:T1:U1", "slack:T1:C1")
    for typed in ("<https://www.biorxiv.org/content/10.1101/2026.11.02.684777v1.full.pdf>",
                  "10.1101/2026.11.02.684777", "https://doi.org/10.1101/2026.11.02.684777"):
        reply = actions.run(parse(f"similar {typed}"), who)
        assert reply.text == "Papers similar to “Phase separation of stress granule proteins under " \
                             "osmotic shock”:", typed
        assert len(reply.results) == 2


# ---------------------------------------------------------------- the command line


def test_paperbot_ingest_biorxiv_newest_day_through_the_cli(cli_env):
    today = dt.datetime.now(dt.timezone.utc).date()
    records = shifted({"10.1101/2026.11.01.684512": 0, "10.1101/2026.11.02.684777": 0}, today)
    with FakeSourceServer() as server:
        server.answer("/details/", BiorxivReplay(records))
        server.route("/feed", Reply(503, "", {"Retry-After": "3600"}, **BUSY))
        env = {**cli_env, "PAPERBOT_BIORXIV_URL": server.url()}
        done = paperbot("ingest", "biorxiv:cell_biology", "--json", env=env)
        failed = paperbot("ingest", "biorxiv:cell_biology", f"rss:{server.url('/feed')}", env=env,
                          check=False)
    counts = json.loads(done.stdout)
    assert (counts["read"], counts["new"], counts["embedded"]) == (2, 2, 2)
    assert counts["sources"][0]["source"] == "biorxiv:cell_biology"
    lines = failed.stdout.splitlines()
    assert failed.returncode == 1 and lines[0] == "biorxiv:cell_biology: 2 papers (0 new)"
    assert lines[1].startswith(f"rss:{server.url('/feed')}: failed — feed 127.0.0.1:")
    assert "(server asks to retry after 3600 s) after 1 attempt" in lines[1]
    assert "Traceback" not in failed.stderr
