"""What a new user hit first (issue 15): ids and links in the console, one-line errors with a
hint, `profile` as the current state, a plain answer when there is nothing to pick from,
mentions refused as topics, and a README / compose file that work as written.

All through the real ConsoleSession and Actions, on a real Recommender over Redis."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

from bot.actions import NOTHING_TO_GO_ON, Actions, Who
from bot.commands import HELP as CHAT_HELP
from bot.commands import parse
from bot.console import HELP as CONSOLE_HELP
from bot.console import ConsoleSession

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXTRA = [   # papers whose links are of every kind the console prints
    {"id": "2401.01234",
     "title": "Message passing graph neural networks for molecular property prediction",
     "abstract": "Graph neural networks pass messages between atoms to predict molecular "
                 "properties."},
    {"title": "Equivariant graph networks for protein docking",
     "abstract": "An equivariant graph neural network docks proteins.",
     "url": "https://doi.org/10.1234/docking.2025.7"},
    {"id": "2402.04321", "title": "Graph transformers for crystal structures",
     "abstract": "Graph transformers learn crystal structures with attention over atoms.",
     "url": "https://huggingface.co/papers/2402.04321"},
]


def listed_ids(answer: str) -> list[str]:
    return re.findall(r"^    id (\S+)", answer, flags=re.MULTILINE)


def similar_to(answer: str) -> str:
    match = re.match(r"Papers similar to “(.+)”:", answer)
    assert match, answer
    return match[1]


@pytest.fixture
def console(rec, demo):
    rec.add_papers(EXTRA)
    return ConsoleSession(rec, "newcomer")


# -- 1. ids, result numbers and links -------------------------------------------------------------
def test_the_console_lists_ids_and_takes_result_numbers(console, rec):
    answer = console.handle("search graph neural networks")
    ids = listed_ids(answer)
    assert ids == [r.paper.id for r in console.last.results] and len(ids) == 5
    second = rec.get_paper(ids[1])

    assert similar_to(console.handle(f"similar {ids[1]}")) == second.title   # the id it shows
    console.handle("search graph neural networks")
    answer = console.handle("similar 2")                                      # a result number
    assert similar_to(answer) == second.title and second.id not in listed_ids(answer)

    console.handle("search graph neural networks")
    first, third, fourth = (console.last.results[i].paper.id for i in (0, 2, 3))
    assert "More like this" in console.handle("like 1")
    assert "Less like this" in console.handle("dislike 3")
    assert "Saved" in console.handle("save 4")
    assert "More like this" in console.handle("👍 #4")
    assert "Feedback removed" in console.handle("clear 4")
    state = rec.people.feedback(console.who.person)
    assert state[first]["rating"] == "like" and state[third]["rating"] == "dislike"
    assert fourth not in state


def test_similar_takes_the_links_the_console_prints(console, rec):
    answer = console.handle("search graph neural networks molecules proteins crystals")
    links = re.findall(r"^    id \S+ · (\S+)$", answer, flags=re.MULTILINE)
    assert links, answer
    for result, link in zip(console.last.results, links):
        assert link == result.paper.url
        assert similar_to(console.handle(f"similar {link}")) == result.paper.title
        console.handle("search graph neural networks molecules proteins crystals")

    mpnn, crystals = rec.get_paper("2401.01234"), rec.get_paper("2402.04321")
    fresh = ConsoleSession(rec, "someone-else")   # nothing listed: the link alone says which paper
    for link, paper in [("https://arxiv.org/abs/2401.01234v2", mpnn),
                        ("https://arxiv.org/pdf/2401.01234v1.pdf", mpnn),
                        ("<https://arxiv.org/abs/2401.01234|arXiv>", mpnn),
                        ("https://huggingface.co/papers/2402.04321", crystals),
                        ("https://doi.org/10.48550/arXiv.2402.04321", crystals)]:
        assert similar_to(fresh.handle(f"similar {link}")) == paper.title, link


def test_the_same_links_work_on_the_chat_platforms(console, rec):
    actions = Actions(rec)
    who = Who("slack:T1:U1", "slack:T1:C1")
    reply = actions.run(parse("similar <https://huggingface.co/papers/2402.04321>"), who)
    assert reply.text == f"Papers similar to “{rec.get_paper('2402.04321').title}”:"


# -- 2. one-line errors with a hint ---------------------------------------------------------------
def test_errors_answer_in_one_line_with_a_hint(console):
    answers = {line: console.handle(line) for line in (
        "serch diffusion", "similar", "like", "dislike", "save x", "clear", "channel",
        "dm 7h30", "subscribe", "channel subscribe", "search")}
    for line, answer in answers.items():
        assert "\n" not in answer and "Commands" not in answer and len(answer) < 160, (line, answer)
    assert answers["serch diffusion"] == ("Unknown command `serch`. Did you mean `search`? "
                                          "Try `help`.")
    assert answers["similar"] == "`similar` needs a paper id or a result number, e.g. `similar 2`."
    assert answers["like"] == "`like N` marks result N of the last list as liked, e.g. `like 2`."
    assert "`save N`" in answers["save x"] and "`clear N`" in answers["clear"]
    assert "e.g. `channel subscribe" in answers["channel subscribe"]
    assert "e.g. `search" in answers["search"]

    assert console.handle("like 1").startswith("There is no result 1 yet: list some papers first")
    console.handle("search graph neural networks")
    assert console.handle("like 9") == "There are only 5 results; pick 1–5."
    assert console.handle("similar 6") == "There are only 5 results; pick 1–5."


def test_the_console_help_lists_reactions_and_speaks_of_the_console(console):
    answer = console.handle("help")
    assert answer == CONSOLE_HELP and console.handle("?") == CONSOLE_HELP
    assert "after /papers" not in answer
    for word in ("like N", "dislike N", "save N", "clear N", "search <query>", "channel time",
                 "similar <paper id, link or result number>", "quit"):
        assert word in answer, word
    # the chat platforms keep their /papers wording, and get the same one-line errors
    actions, who = Actions(console.actions.rec), Who("discord:1:2", "discord:1:3")
    assert actions.run(parse("help"), who).text == CHAT_HELP and "after /papers" in CHAT_HELP
    assert actions.run(parse("serch x"), who).text.startswith("Unknown command `serch`.")
    assert "react to it with 👍" in actions.run(parse("like 2"), who).text


# -- 3. profile: where a person stands now --------------------------------------------------------
def test_profile_shows_the_current_state_not_the_event_log(console, rec):
    console.handle("subscribe graph neural networks")
    console.handle("search graph neural networks")
    papers = [r.paper for r in console.last.results]
    for line in ("like 1", "dislike 2", "save 3", "like 4", "clear 4", "like 5", "dislike 5"):
        console.handle(line)
    profile = console.handle("profile")
    assert profile.splitlines()[:2] == ["Topics: “graph neural networks”",
                                        "Feedback: 1 👍 · 2 👎 · 1 🔖 · 0 papers shown"]
    liked, disliked, saved = (profile.split(label)[1] for label in
                              ("👍 More like these (1):", "👎 Less like these (2):", "🔖 Saved (1):"))
    assert f"{papers[0].title} ({papers[0].id})" in liked.split("👎")[0]
    assert papers[1].title in disliked and papers[4].title in disliked.split("🔖")[0]
    assert papers[2].title in saved
    assert papers[3].title not in profile                    # what was taken back is gone
    assert not re.search(r"^\s*(like|dislike|save|clear): ", profile, re.MULTILINE)   # no event log

    fresh = ConsoleSession(rec, "blank").handle("profile")
    assert fresh.splitlines() == ["Topics: none", "Feedback: 0 👍 · 0 👎 · 0 🔖 · 0 papers shown",
                                  "No reactions yet: 👍 👎 🔖 on papers teach paperbot what you like."]


# -- 4. nothing to pick from ----------------------------------------------------------------------
def test_digest_with_no_topics_and_no_feedback_says_so(console, rec):
    assert console.handle("digest") == NOTHING_TO_GO_ON
    assert console.handle("recommend") == NOTHING_TO_GO_ON
    assert "`subscribe graph neural networks`" in NOTHING_TO_GO_ON and "👍" in NOTHING_TO_GO_ON
    console.handle("search graph neural networks")
    console.handle("dislike 1")                        # a dislike alone says only what to avoid
    assert console.handle("digest") == NOTHING_TO_GO_ON
    console.handle("search graph neural networks")
    console.handle("like 2")
    assert console.handle("digest").startswith("Your picks:")


def test_a_search_before_any_ingest_says_to_ingest_first(rec):
    """A fresh install has no papers: a search says what to do (it once answered with an
    internal error about an empty background)."""
    session = ConsoleSession(rec, "newcomer")
    answer = session.handle("search graph neural networks")
    assert answer.startswith("No papers yet: ingest some first"), answer


# -- 5. mentions are not topics -------------------------------------------------------------------
MENTIONS = ["<!channel>", "<!here>", "<!everyone>", "@everyone", "@here", "<@U123>",
            "<#C123|general>", "<@&123>", "<@!123>", "graph neural networks @here", "<@U42|ana>"]


@pytest.mark.parametrize("mention", MENTIONS)
def test_mentions_are_refused_as_topics(console, rec, mention):
    for command in ("subscribe", "channel subscribe"):
        answer = console.handle(f"{command} {mention}")
        assert answer.startswith("That looks like a mention, not a topic") and "\n" not in answer
        assert "<" not in answer and "@" not in answer           # nothing to ping with
    assert rec.topics(console.who.person) == [] and rec.topics(console.who.channel) == []


def test_topics_with_at_signs_that_are_no_mentions_stay_and_old_mentions_can_go(console, rec):
    assert "now follow" in console.handle("subscribe C++ @ scale")
    assert "now follow" in console.handle("subscribe graphs@here.org")
    rec.subscribe(console.who.person, "<!channel>")          # kept from before the refusal
    assert "Unfollowed" in console.handle("unsubscribe <!channel>")
    assert rec.topics(console.who.person) == ["C++ @ scale", "graphs@here.org"]


# -- 6. the README and the compose file -----------------------------------------------------------
def test_readme_and_compose_work_as_written():
    readme = (ROOT / "README.md").read_text()
    assert "aren't available yet" not in readme
    assert ".venv/bin/paperbot" in readme and "source .venv/bin/activate" in readme
    for timing in (r"install takes about \d+(–\d+)? min", r"`make test`\s+about \d+ min more",
                   r"`paperbot bench --quick` about \d+ min"):   # stated, as measured last
        assert re.search(timing, readme), timing
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["paperbot"]
    assert service["command"] == ["serve"] and service["restart"] == "unless-stopped"
    assert "docker compose run --rm paperbot console" in readme
