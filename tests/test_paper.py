import datetime as dt

import pytest

from recommender.paper import Paper, normalise_title, parse_arxiv_id, title_id


@pytest.mark.parametrize("text, expected", [
    ("2401.01234", "2401.01234"),
    ("2401.01234v3", "2401.01234"),
    ("arXiv:2401.01234v2", "2401.01234"),
    ("0704.0001", "0704.0001"),
    ("hep-th/9901001", "hep-th/9901001"),
    ("hep-th/9901001v2", "hep-th/9901001"),
    ("math.GT/0309136", "math.GT/0309136"),
    ("https://arxiv.org/abs/2401.01234v2", "2401.01234"),
    ("https://arxiv.org/pdf/2401.01234v1.pdf", "2401.01234"),
    ("https://arxiv.org/pdf/2401.01234", "2401.01234"),
    ("http://arxiv.org/html/2401.01234v1", "2401.01234"),
    ("https://arxiv.org/abs/hep-th/9901001", "hep-th/9901001"),
    ("  2401.01234  ", "2401.01234"),
])
def test_arxiv_ids_lose_their_version(text, expected):
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize("text", ["", "hello", "2401.1", "demo-001", "https://example.org/2401"])
def test_non_arxiv_text_has_no_arxiv_id(text):
    assert parse_arxiv_id(text) is None


def test_title_ids_ignore_case_punctuation_and_accents():
    assert title_id("Attention Is All You Need!") == title_id("attention is all you need")
    assert title_id("Protégé: a tool") == title_id("Protege - A Tool")
    assert title_id("Attention is all you need") != title_id("Attention is not all you need")
    assert normalise_title("  GNNs,  for  Chemistry ") == "gnns for chemistry"


def test_from_dict_keeps_a_given_id_and_strips_versions():
    assert Paper.from_dict({"id": "2401.01234v2", "title": "T"}).id == "2401.01234"
    assert Paper.from_dict({"id": "demo-001", "title": "T"}).id == "demo-001"
    assert Paper.from_dict({"title": "Some  Title"}).id == title_id("some title")
    found = Paper.from_dict({"title": "T", "url": "https://arxiv.org/abs/2401.01234v4"})
    assert found.id == "2401.01234"


def test_from_dict_normalises_fields():
    paper = Paper.from_dict({
        "id": "2503.11685", "title": " CORDIC Is\n All You Need ", "summary": "line one\nline two",
        "authors": "Ada Lovelace, Alan Turing", "categories": "cs.AR cs.CV", "date": "2025-03-18",
        "n_listings": 2,
    }, source="file:x")
    assert paper.title == "CORDIC Is All You Need"
    assert paper.abstract == "line one line two"
    assert paper.authors == ["Ada Lovelace", "Alan Turing"]
    assert paper.categories == ["cs.AR", "cs.CV"]
    assert paper.published == dt.date(2025, 3, 18)
    assert paper.url == "https://arxiv.org/abs/2503.11685"
    assert paper.extras == {"n_listings": 2}
    assert paper.source == "file:x"


def test_a_paper_needs_a_title():
    with pytest.raises(ValueError):
        Paper.from_dict({"title": "  ", "abstract": "x"})


def test_content_hash_follows_the_embedded_text():
    a = Paper(id="1", title="T", abstract="A")
    assert a.content_hash == Paper(id="2", title="T", abstract="A").content_hash
    assert a.content_hash != Paper(id="1", title="T", abstract="B").content_hash


def test_titles_in_other_scripts_get_ids_of_their_own():
    assert title_id("图神经网络") != title_id("扩散模型")
    assert title_id("Ἀρχή") == title_id("αρχη")


def test_semicolon_separated_authors_keep_last_first_names():
    paper = Paper.from_dict({"title": "T", "authors": "Lovelace, Ada; Turing, Alan",
                             "categories": "cs.LG;stat.ML"})
    assert paper.authors == ["Lovelace, Ada", "Turing, Alan"]
    assert paper.categories == ["cs.LG", "stat.ML"]
