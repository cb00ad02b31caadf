"""Paper sources through the real HTTP client against a local server, and local files."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import socket
import time
from pathlib import Path

import pytest

from recommender.config import Settings
from recommender.paper import title_id
from recommender.sources import HttpClient, SourceError, read_file, read_source
from recommender.sources.arxiv import fetch_listing, search_api
from recommender.sources.hf_daily import fetch_daily
from recommender.sources.http import USER_AGENT, parse_retry_after
from testkit.fake_sources import FIXTURES, FakeSourceServer, Reply, fixture_reply

SHARED = Path("/work/shared/data")
ARXIV_CORPUS = SHARED / "arxiv/daily-arxiv-ai-enhanced/papers.jsonl.gz"
HF_LISTS = SHARED / "hf-daily-lists/papers.jsonl"


@pytest.fixture
def server():
    with FakeSourceServer() as fake:
        yield fake


@pytest.fixture
def client():
    with HttpClient(timeout=2, connect_timeout=1, backoff_base=0.01, max_wait=5,
                    min_interval=0) as http:
        yield http


# ---------------------------------------------------------------- arXiv RSS listing


def test_rss_listing_keeps_new_and_cross_and_drops_replacements(server, client):
    server.route("/rss/cs.LG", fixture_reply("arxiv_rss_cs_LG.xml"))
    papers = fetch_listing("cs.LG", client, base_url=server.url("/rss"))

    assert [p.id for p in papers] == ["2401.01234", "2401.02002", "2401.03117"]
    first = papers[0]
    assert first.title.startswith("Sharpness-Aware Minimization with $\\ell_\\infty$")
    assert first.abstract.startswith("Sharpness-aware minimization (SAM) perturbs")
    assert first.abstract.endswith("confirm a 0.8\\% gain over SGD & Adam.")
    assert "\n" not in first.abstract and "Announce Type" not in first.abstract
    assert first.authors == ["Zoë Müller", "José Álvarez-Peña", "Wei Zhang"]
    assert first.categories == ["cs.LG", "math.OC", "stat.ML"]
    assert first.published == dt.date(2024, 1, 8)
    assert first.url == "https://arxiv.org/abs/2401.01234"
    assert first.source == "arxiv"
    assert papers[1].title == "Graph Transformers for Molecular Property Prediction: A Benchmark <and> a Critique"
    assert papers[1].authors == ["Priya Raman", "Tomasz Kowalski"]
    assert [p.extras["announce_type"] for p in papers] == ["new", "new", "cross"]
    assert server.requests[0].headers["User-Agent"] == USER_AGENT


def test_rss_listing_can_keep_replacements(server, client):
    server.route("/rss/cs.LG", fixture_reply("arxiv_rss_cs_LG.xml"))
    papers = fetch_listing("cs.LG", client, base_url=server.url("/rss"),
                           announce_types=("replace", "replace-cross"))
    assert [p.id for p in papers] == ["2305.09876", "2211.04567"]


def test_rss_weekend_listing_is_empty(server, client):
    server.route("/rss/cs.LG", fixture_reply("arxiv_rss_weekend.xml"))
    assert fetch_listing("cs.LG", client, base_url=server.url("/rss")) == []


def endpoints(**env):
    """The source endpoints as the settings read them from these variables."""
    return Settings.from_env(env).sources


def test_rss_base_url_from_environment(server, client):
    server.route("/rss/hep-th", fixture_reply("arxiv_rss_weekend.xml"))
    at = endpoints(ARXIV_RSS_URL=server.url("/rss/"))
    assert list(read_source("arxiv:hep-th", client, endpoints=at)) == []
    assert [r.path for r in server.requests] == ["/rss/hep-th"]


def test_malformed_xml_is_a_source_error(server, client):
    truncated = (FIXTURES / "arxiv_rss_cs_LG.xml").read_bytes()[:1500]
    server.route("/rss/cs.LG", Reply(body=truncated))
    with pytest.raises(SourceError, match=r"^arXiv listing for cs.LG returned malformed XML"):
        fetch_listing("cs.LG", client, base_url=server.url("/rss"))


def test_html_instead_of_rss_is_a_source_error(server, client):
    server.route("/rss/cs.LG", Reply(body="<html><body>Maintenance</body></html>",
                                     content_type="text/html"))
    with pytest.raises(SourceError, match="not an RSS feed"):
        fetch_listing("cs.LG", client, base_url=server.url("/rss"))


# ---------------------------------------------------------------- arXiv API


def test_api_search_parses_atom_entries(server, client):
    server.route("/api/query", fixture_reply("arxiv_api_cs_LG.xml"))
    papers = search_api("cs.LG", client, max_results=3, start=0, base_url=server.url("/api/query"))

    assert [p.id for p in papers] == ["2401.01234", "2401.00999", "cs/0112017"]
    first = papers[0]
    assert first.title == "Sharpness-Aware Minimization with $\\ell_\\infty$ Perturbations Provably Finds Flat Minima"
    assert first.abstract.startswith("Sharpness-aware minimization (SAM) perturbs the weights within an $\\ell_2$ ball")
    assert first.authors == ["Zoë Müller", "José Álvarez-Peña", "Wei Zhang"]
    assert first.categories == ["stat.ML", "cs.LG", "math.OC"]  # primary first, no repeats
    assert first.published == dt.date(2024, 1, 2)
    assert first.url == "https://arxiv.org/abs/2401.01234"
    assert first.source == "arxiv-api"
    assert first.extras == {"comment": "12 pages, 4 figures; v2: fixed a typo in Theorem 2"}
    assert papers[1].extras == {"journal_ref": "NeurIPS 2023", "doi": "10.1000/xyz123"}
    assert papers[1].authors == ["Łukasz Nowak"]
    query = server.requests[0].query
    assert query == {"search_query": ["cat:cs.LG"], "sortBy": ["submittedDate"],
                     "sortOrder": ["descending"], "start": ["0"], "max_results": ["3"]}


def test_api_zero_results_is_empty(server, client):
    server.route("/api/query", fixture_reply("arxiv_api_empty.xml"))
    assert search_api("cs.LG", client, start=500000, base_url=server.url("/api/query")) == []


def test_api_error_entry_is_a_source_error(server, client):
    server.route("/api/query", fixture_reply("arxiv_api_error.xml"))
    with pytest.raises(SourceError, match="arXiv API error: max_results must be non-negative"):
        search_api("cs.LG", client, max_results=-1, base_url=server.url("/api/query"))


def test_api_base_url_from_environment(server, client):
    server.route("/api/query", fixture_reply("arxiv_api_cs_LG.xml"))
    at = endpoints(ARXIV_API_URL=server.url("/api/query"))
    assert [p.id for p in read_source("arxiv-api:cs.LG", client, limit=2, endpoints=at)] == \
        ["2401.01234", "2401.00999"]
    with pytest.raises(ValueError, match="^ARXIV_API_URL must be an http"):
        endpoints(ARXIV_API_URL="localhost:8080/api")
    assert server.requests[0].query["max_results"] == ["2"]


# ---------------------------------------------------------------- Hugging Face Daily Papers


def test_hf_daily_papers(server, client):
    server.route("/api/daily_papers", fixture_reply("hf_daily_2024-01-02.json"))
    papers = fetch_daily(dt.date(2024, 1, 2), client, base_url=server.url("/api/daily_papers"))

    assert server.requests[0].query == {"date": ["2024-01-02"]}
    assert [p.id for p in papers] == ["2401.01234", "2401.00999"]
    first = papers[0]
    assert first.source == "hf-daily"
    assert first.authors == ["Zoë Müller", "José Álvarez-Peña", "Wei Zhang"]
    assert first.abstract.endswith("prove convergence to flat minima.") and "\n" not in first.abstract
    assert first.published == dt.date(2024, 1, 2)
    assert first.url == "https://arxiv.org/abs/2401.01234"
    assert first.extras == {"upvotes": 12, "github_repo": "https://github.com/example/linf-sam",
                            "num_comments": 3}
    assert papers[1].extras == {"upvotes": 5, "num_comments": 0}


def test_hf_daily_empty_day(server, client):
    server.route("/api/daily_papers", Reply(body="[]", content_type="application/json"))
    at = endpoints(HF_API_URL=server.url("/api/daily_papers"))
    assert list(read_source("hf-daily:2024-01-06", client, endpoints=at)) == []
    assert list(read_source("hf-daily", client, endpoints=at)) == []
    assert [r.query for r in server.requests] == [{"date": ["2024-01-06"]}, {}]


def test_hf_daily_truncated_json_is_a_source_error(server, client):
    body = (FIXTURES / "hf_daily_2024-01-02.json").read_bytes()[:700]
    server.route("/api/daily_papers", Reply(body=body, content_type="application/json"))
    with pytest.raises(SourceError, match="^Hugging Face daily papers for 2024-01-02 returned malformed JSON"):
        fetch_daily(dt.date(2024, 1, 2), client, base_url=server.url("/api/daily_papers"))


@pytest.mark.parametrize("body", ['{"error": "Invalid date"}', '[{"title": "no paper object"}]'])
def test_hf_daily_wrong_shape_is_a_source_error(server, client, body):
    server.route("/api/daily_papers", Reply(body=body, content_type="application/json"))
    with pytest.raises(SourceError, match="Hugging Face daily papers for the latest day: "):
        fetch_daily(None, client, base_url=server.url("/api/daily_papers"))


# ---------------------------------------------------------------- the HTTP client


def test_429_with_retry_after_is_honoured(server, client, caplog):
    server.route("/api/daily_papers",
                 Reply(429, "slow down", {"Retry-After": "1"}, content_type="text/plain"),
                 Reply(body="[]", content_type="application/json"))
    caplog.set_level(logging.WARNING, logger="recommender.sources.http")
    url = server.url("/api/daily_papers")
    assert client.get_json(url, {"token": "s3cret"}) == []

    first, second = server.requests
    assert 0.9 <= second.at - first.at < 3.0
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert url in message and "HTTP 429" in message and "retrying in 1.0 s" in message
    assert "s3cret" not in caplog.text


def test_503_then_success(server, client):
    server.route("/rss/cs.LG", Reply(503, "busy", content_type="text/plain"),
                 fixture_reply("arxiv_rss_weekend.xml"))
    assert fetch_listing("cs.LG", client, base_url=server.url("/rss")) == []
    assert len(server.requests) == 2


def test_503_forever_gives_one_clear_error(server, client):
    server.route("/rss/cs.LG", Reply(503, "busy", content_type="text/plain"))
    with pytest.raises(SourceError) as caught:
        fetch_listing("cs.LG", client, base_url=server.url("/rss"))
    assert str(caught.value) == "arXiv listing for cs.LG unavailable: HTTP 503 after 4 attempts"
    assert len(server.requests) == 4


def test_retry_after_beyond_max_wait_gives_up_at_once(server, client):
    server.route("/rss/cs.LG", Reply(503, "", {"Retry-After": "3600"}, content_type="text/plain"))
    with pytest.raises(SourceError, match=r"HTTP 503 \(server asks to retry after 3600 s\) after 1 attempt$"):
        fetch_listing("cs.LG", client, base_url=server.url("/rss"))
    assert len(server.requests) == 1


def test_client_error_is_not_retried(server, client):
    with pytest.raises(SourceError, match="^arXiv listing for cs.LG unavailable: HTTP 404$"):
        fetch_listing("cs.LG", client, base_url=server.url("/nothing-here"))
    assert len(server.requests) == 1


def test_timeout_is_retried(server, caplog):
    server.route("/rss/cs.LG", Reply(delay=1.0, body="too late"), fixture_reply("arxiv_rss_weekend.xml"))
    caplog.set_level(logging.WARNING, logger="recommender.sources.http")
    with HttpClient(timeout=0.2, backoff_base=0.01, min_interval=0) as http:
        assert fetch_listing("cs.LG", http, base_url=server.url("/rss")) == []
    assert len(server.requests) == 2
    assert "timed out" in caplog.text


def test_connection_refused_ends_in_source_error():
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with HttpClient(backoff_base=0.01, min_interval=0, max_attempts=2) as http:
        with pytest.raises(SourceError, match=r"unavailable: connection failed \(ConnectError\) after 2 attempts"):
            http.get_text(f"http://127.0.0.1:{port}/rss/cs.LG")


def test_backoff_grows_exponentially_with_jitter(server):
    server.route("/x", Reply(500, "oops", content_type="text/plain"))
    waits: list[float] = []
    with HttpClient(backoff_base=1.0, min_interval=0, sleep=waits.append) as http:
        with pytest.raises(SourceError, match="HTTP 500 after 4 attempts"):
            http.get_text(server.url("/x"))
    assert len(waits) == 3
    for wait, low in zip(waits, (1, 2, 4)):
        assert low <= wait <= low + 1


def test_polite_interval_between_requests_to_one_host(server):
    server.route("/x", Reply(body="ok", content_type="text/plain"))
    with HttpClient(min_interval=0.5) as http:
        assert http.get_text(server.url("/x")) == "ok"
        assert http.get_text(server.url("/x")) == "ok"
    first, second = server.requests
    assert second.at - first.at >= 0.5


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_two_seconds = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)
    assert 0.5 < parse_retry_after(in_two_seconds.strftime("%a, %d %b %Y %H:%M:%S GMT")) <= 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# ---------------------------------------------------------------- files


def test_jsonl_gz_in_the_arxiv_corpus_format():
    papers = list(read_file(FIXTURES / "daily_arxiv_sample.jsonl.gz"))
    assert [p.id for p in papers] == ["2503.11677", "2503.11685", "2503.11692", "2503.11731", "2503.11742"]
    cordic = papers[1]
    assert cordic.title == "CORDIC Is All You Need"
    assert cordic.categories == ["cs.AR", "cs.CV", "eess.IV"]
    assert cordic.published == dt.date(2025, 3, 18)
    assert cordic.source == "file:daily_arxiv_sample.jsonl.gz"
    assert cordic.extras == {"n_listings": 1}
    assert cordic.url == "https://arxiv.org/abs/2503.11685"


def test_list_files_get_title_ids_so_a_paper_is_one_paper_in_every_list():
    papers = list(read_file(FIXTURES / "hf_daily_lists_sample.jsonl"))
    assert len(papers) == 5
    assert all(p.id.startswith("t:") for p in papers)
    assert papers[0].id == papers[4].id == title_id(papers[0].title)
    assert len({p.id for p in papers}) == 4
    assert papers[0].extras == {"list": "000_0093d5b2f21bc2f7", "entry_id": "000_0093d5b2f21bc2f7-1"}
    assert papers[4].extras["entry_id"] == "002_5ae8f337b28709d4-31"


def test_title_ids_are_stable_across_punctuation_and_case(tmp_path):
    path = tmp_path / "titles.jsonl"
    rows = [{"title": "Attention Is All You Need"}, {"title": "attention is all you need!"},
            {"title": "  Attention — is ALL you need. "}, {"title": "Attention Is Not All You Need"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    ids = [p.id for p in read_file(path)]
    assert ids[0] == ids[1] == ids[2] != ids[3]


def test_keep_ids_false_ignores_ids_in_the_file(tmp_path):
    path = tmp_path / "positions.jsonl"
    path.write_text(json.dumps({"id": "row-7", "title": "Some Paper", "url": "https://arxiv.org/abs/2401.07777v2"}) + "\n")
    assert [p.id for p in read_file(path)] == ["row-7"]
    [paper] = read_file(path, keep_ids=False)
    assert paper.id == "2401.07777" and paper.extras == {"entry_id": "row-7"}


def test_csv_with_separated_lists_and_a_row_without_title(caplog):
    # The first row's quoted abstract spans lines 2-3, so the title-less row is on line 5.
    papers = list(read_file(FIXTURES / "papers.csv"))
    assert len(papers) == 2
    first, second = papers
    assert first.id == "2401.01234"
    assert first.title == "Sharpness-Aware Minimization, Revisited"
    assert first.abstract == 'A multi-line abstract with a "quote" and $\\ell_2$.'
    assert first.authors == ["Müller, Zoë", "Álvarez-Peña, José"]
    assert first.categories == ["cs.LG", "stat.ML"]
    assert first.published == dt.date(2024, 1, 2)
    assert first.source == "file:papers.csv"
    assert second.id == title_id("Paper Without An Id")
    assert second.categories == ["cs.AI", "cs.CL"]
    assert second.authors == ["Ada Lovelace"]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "skipped 1 row(s)" in warning.getMessage() and "line 5" in warning.getMessage()


def test_bad_jsonl_lines_are_skipped_with_one_warning(caplog):
    papers = list(read_file(FIXTURES / "bad_lines.jsonl"))
    assert [p.id for p in papers] == ["2401.01234", "2401.04444"]  # version stripped
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "bad_lines.jsonl: skipped 3 row(s)" in warnings[0] and "the first is line 2" in warnings[0]


def test_json_array_and_limit():
    papers = list(read_file(FIXTURES / "papers.json"))
    assert [p.id for p in papers] == ["2312.11111", "2312.22222"]
    assert papers[0].authors == ["Grace Hopper", "Alan Turing"]
    assert [p.id for p in read_file(FIXTURES / "daily_arxiv_sample.jsonl.gz", limit=2)] == ["2503.11677", "2503.11685"]


def test_unreadable_files_are_source_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        read_file(tmp_path / "missing.jsonl")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SourceError, match=r"supported files are \.jsonl\[\.gz\], \.json\[\.gz\], \.csv\[\.gz\]"):
        read_file(tmp_path / "notes.txt")
    corrupt = tmp_path / "corrupt.jsonl.gz"
    corrupt.write_bytes(gzip.compress(b'{"title": "x"}\n' * 100)[:-30])
    with pytest.raises(SourceError, match="cannot read"):
        list(read_file(corrupt))


# ---------------------------------------------------------------- read_source


def test_read_source_reads_files():
    papers = list(read_source(str(FIXTURES / "daily_arxiv_sample.jsonl.gz"), limit=3))
    assert len(papers) == 3


@pytest.mark.parametrize("spec, message", [
    ("rss2:cs.LG", "unknown source 'rss2:cs.LG'"),
    ("data/missing.jsonl", "no such file: data/missing.jsonl"),
    ("arxiv:cs LG", "'cs LG' is not an arXiv category"),
    ("arxiv-api:../../etc", "is not an arXiv category"),
    ("arxiv:", "'' is not an arXiv category"),
    ("hf-daily:2024-13-45", "hf-daily:2024-13-45 is not a date"),
])
def test_bad_specs_fail_before_any_request(server, client, spec, message):
    with pytest.raises(SourceError, match=message) as caught:
        read_source(spec, client)
    if message.startswith(("unknown", "no such")):
        assert "arxiv:CATEGORY" in str(caught.value) and "hf-daily:YYYY-MM-DD" in str(caught.value)
    assert server.requests == []


@pytest.mark.parametrize("category", ["cs.LG", "hep-th", "math.GT", "stat.ML", "cond-mat.mes-hall", "astro-ph.CO"])
def test_real_category_names_are_accepted(server, client, category):
    server.route(f"/rss/{category}", fixture_reply("arxiv_rss_weekend.xml"))
    assert fetch_listing(category, client, base_url=server.url("/rss")) == []


# ---------------------------------------------------------------- the shared corpora, when present


@pytest.mark.skipif(not (ARXIV_CORPUS.exists() and HF_LISTS.exists()), reason="shared data not present")
def test_shared_corpora_load_as_they_are(caplog):
    started = time.monotonic()
    ids = [p.id for p in read_file(ARXIV_CORPUS)]
    assert len(ids) == len(set(ids)) == 74_728
    lists = list(read_file(HF_LISTS))
    assert len(lists) == 246 and len({p.id for p in lists}) == 178
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert time.monotonic() - started < 30
