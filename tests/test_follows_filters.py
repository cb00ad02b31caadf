"""Followed authors and filters (issue 17): the names, both ranking paths, and the commands on
the console (the console's own session over Actions) and the CLI exactly as named. The fake
Slack and the fake Discord: tests/test_follows_filters_chat.py."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from bot.console import ConsoleSession
from recommender.paper import Paper
from recommender.preferences import author_key

ALICE = "console:local:alice"
LAB = "slack:T1:CLAB"


def lecun_paper(days_ago: int = 0, pid: str = "2612.00001") -> Paper:
    """A new paper far from speech recognition, by an author someone may follow."""
    return Paper.from_dict({
        "id": pid, "title": "Joint-embedding predictive world models for legged robot navigation",
        "abstract": "We learn a world model for a quadruped robot by predicting the embeddings of "
                    "future camera frames rather than their pixels, and plan footsteps in that "
                    "latent space. The robot crosses unseen rough terrain with 30% fewer falls.",
        "authors": ["Amélie Durand", "Yann LeCun"], "categories": ["cs.RO"],
        "published": (dt.date.today() - dt.timedelta(days=days_ago)).isoformat()})


@pytest.fixture
def corpus(rec, demo):
    rec.add_papers([lecun_paper(), lecun_paper(days_ago=40, pid="2610.00002")])
    rec.subscribe(ALICE, "speech recognition")
    return rec


def ids(results) -> list[str]:
    return [r.paper.id for r in results]


@pytest.mark.parametrize("spelling", ["Yann LeCun", "Y. LeCun", "LeCun, Yann", "yann lecun",
                                      "Y LeCun", "  Yann   LeCun "])
def test_names_match_across_case_accents_and_initials(spelling):
    assert author_key(spelling) == author_key("Yann LeCun") == "y lecun"


def test_name_keys_keep_what_tells_people_apart():
    assert author_key("José Müller") == author_key("Jose Muller")
    assert author_key("Laurens van der Maaten") == author_key("L. van der Maaten") == "l van der maaten"
    assert author_key("Kaiming He") != author_key("Kaiming Hu")
    assert author_key("Yann LeCun") != author_key("Xavier LeCun")
    assert author_key("!!!") == ""


def test_a_followed_authors_new_paper_comes_first_whatever_its_rank(corpus):
    before = corpus.recommend(ALICE, k=3)
    assert "2612.00001" not in ids(before)      # far from the person's topic
    assert corpus.preferences.follow(ALICE, "Y. LeCun")
    picks = corpus.recommend(ALICE, k=3)
    assert ids(picks)[0] == "2612.00001"         # the 40-day-old one is not new
    assert picks[0].why == "by Yann LeCun, whom you follow"
    assert ids(picks)[1:] == ids(before)[:2]
    # the daily fan-out gives the same picks
    assert ids(corpus.picks_for_many([ALICE], k=3)[ALICE]) == ids(picks)
    # shown once, it is not picked again
    corpus.mark_shown(ALICE, ["2612.00001"])
    assert "2612.00001" not in ids(corpus.recommend(ALICE, k=3))


def test_a_daily_post_takes_the_followed_paper_among_the_new_ones(corpus):
    corpus.preferences.follow(LAB, "yann lecun")
    corpus.subscribe(LAB, "speech recognition")
    new = ["2610.00002", *list(corpus.index.ids[:20])]   # a day's candidates: old but new here
    one = corpus.picks_for_channel(LAB, k=3, candidates=new)
    many = corpus.picks_for_many(channels=[LAB], k=3, candidates=new)[LAB]
    assert ids(one)[0] == ids(many)[0] == "2610.00002"
    assert one[0].why == many[0].why == "by Yann LeCun, whom this channel follows"
    assert ids(one) == ids(many)


def test_following_alone_is_enough_for_picks(rec, demo):
    rec.add_papers([lecun_paper()])
    rec.preferences.follow("console:local:bob", "LeCun")   # a lone surname matches any initial
    assert ids(rec.recommend("console:local:bob", k=5)) == ["2612.00001"]
    assert ids(rec.picks_for_many(["console:local:bob"], k=5)["console:local:bob"]) == ["2612.00001"]


def test_filters_narrow_picks_and_daily_posts_but_not_search(corpus):
    picks = corpus.recommend(ALICE, k=5)
    assert any("speech" in r.paper.text.lower() for r in picks)
    corpus.preferences.add_filter(ALICE, "exclude", ["speech"])
    excluded = corpus.recommend(ALICE, k=5)
    assert excluded and not any("speech" in r.paper.text.lower() for r in excluded)
    assert ids(corpus.picks_for_many([ALICE], k=5)[ALICE]) == ids(excluded)
    assert any("speech" in r.paper.text.lower() for r in corpus.search("speech recognition"))

    corpus.preferences.clear_filters(ALICE)
    corpus.preferences.add_filter(ALICE, "category", ["cs.SD"])
    only = corpus.recommend(ALICE, k=5)
    assert only and all("cs.SD" in r.paper.categories for r in only)
    assert ids(corpus.picks_for_many([ALICE], k=5)[ALICE]) == ids(only)

    corpus.preferences.clear_filters(ALICE)
    corpus.preferences.add_filter(ALICE, "include", ["transformer", "self-supervised"])
    included = corpus.recommend(ALICE, k=5)
    assert included and all("transformer" in r.paper.text.lower() or
                            ("self" in r.paper.text.lower() and "supervis" in r.paper.text.lower())
                            for r in included)
    assert ids(corpus.picks_for_many([ALICE], k=5)[ALICE]) == ids(included)


def test_exclude_wins_over_include_and_follows(corpus):
    corpus.preferences.follow(ALICE, "Yann LeCun")
    corpus.preferences.add_filter(ALICE, "include", ["robot"])
    assert ids(corpus.recommend(ALICE, k=3))[0] == "2612.00001"
    corpus.preferences.add_filter(ALICE, "exclude", ["quadruped robot"])
    picks = corpus.recommend(ALICE, k=3)
    assert "2612.00001" not in ids(picks)
    assert all("robot" in r.paper.text.lower() for r in picks)
    assert ids(corpus.picks_for_many([ALICE], k=3)[ALICE]) == ids(picks)


def test_the_console_commands(rec, demo):
    rec.add_papers([lecun_paper()])
    me = ConsoleSession(rec, "carol")
    assert "now follow Y. LeCun" in me.handle("follow Y. LeCun")
    assert "was followed already" in me.handle("follow yann lecun")
    me.handle("subscribe speech recognition")
    topics = me.handle("topics")
    assert "speech recognition" in topics and "Your authors: Y. LeCun" in topics
    digest = me.handle("digest")
    first = digest[digest.index("[1]"):digest.index("[2]")]
    assert "Joint-embedding predictive world models" in first
    assert "why: by Yann LeCun, whom you follow" in first
    assert "Never in picks: speech" in me.handle("filter exclude speech")
    assert "Only categories: cs.LG" in me.handle("filter category cs.LG")
    shown = me.handle("filter")
    assert "exclude “speech”" in shown and "categories “cs.LG”" in shown
    profile = me.handle("profile")
    assert "Your authors: Y. LeCun" in profile and "exclude “speech”" in profile
    assert "cleared" in me.handle("filter clear")
    assert "Your filters: none" in me.handle("filter")
    assert "Unfollowed Y. LeCun" in me.handle("unfollow Yann LeCun")
    assert "is not followed" in me.handle("unfollow Yann LeCun")
    # the channel's own: the console's terminal is its channel
    assert "This channel now follows Geoffrey Hinton" in me.handle("channel follow Geoffrey Hinton")
    assert "This channel's authors: Geoffrey Hinton" in me.handle("topics")


@pytest.mark.parametrize("line, says", [
    ("follow", "needs an author's name"),
    ("follow <@U123>", "not an author's name"),
    ("filter exclude", "needs what to filter on"),
    ("filter exclude the, of", "only very common words"),
    ("filter category machine learning", "is not an arXiv category"),
    ("filter sometimes", "takes exclude <words>"),
    ("channel filter", "This channel's filters: none"),   # shown, not an error
])
def test_bad_input_gets_one_line(rec, demo, line, says):
    answer = ConsoleSession(rec, "dave").handle(line)
    assert says in answer and "Traceback" not in answer
    assert len(answer.splitlines()) == 1


def run_cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_cli_commands_exactly_as_named(rec, demo, cli_env):
    rec.add_papers([lecun_paper()])
    rec.subscribe(ALICE, "speech recognition")
    done = run_cli(cli_env, "follow", "--user", ALICE, "Y. LeCun")
    assert done.returncode == 0 and "following Y. LeCun" in done.stdout
    done = run_cli(cli_env, "filter", "--user", ALICE, "exclude", "speech")
    assert done.returncode == 0 and "exclude “speech”" in done.stdout
    bad = run_cli(cli_env, "filter", "--user", ALICE, "category", "not a category")
    assert bad.returncode == 1 and "is not an arXiv category" in bad.stderr
    assert "Traceback" not in bad.stderr
    picks = json.loads(run_cli(cli_env, "recommend", "--user", ALICE, "-k", "4", "--json").stdout)
    assert picks[0]["id"] == "2612.00001" and "whom you follow" in picks[0]["why"]
    assert not any("speech" in (p["title"] + p["abstract"]).lower() for p in picks)
    profile = json.loads(run_cli(cli_env, "profile", "--user", ALICE, "--json").stdout)
    assert profile["follows"] == ["Y. LeCun"] and profile["filters"]["exclude"] == ["speech"]
    assert run_cli(cli_env, "filter", "--user", ALICE, "clear").stdout.strip() == "filters cleared"
    done = run_cli(cli_env, "unfollow", "--user", ALICE, "Yann LeCun")
    assert done.returncode == 0 and "unfollowed Y. LeCun" in done.stdout
    assert rec.preferences.get(ALICE).follows == {} and not rec.preferences.get(ALICE).filters
