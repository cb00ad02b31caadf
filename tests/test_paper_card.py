"""The paper card: PDF and code links and Hugging Face upvotes, wherever a paper is shown (the
console and CLI, Slack, Discord) and in `--json`; nothing made up when the source gave nothing."""

from __future__ import annotations

import json

from test_cli import paperbot
from test_discord import RunningBot, ask
from test_slack import eventually
from bot.console import ConsoleSession
from recommender.paper import Paper

CODED = {"id": "2401.01234", "title": "Sharpness-aware minimisation for molecular graph networks",
         "abstract": "We study flat minima of molecular graph networks. Code: "
                     "https://github.com/example/linf-sam.",
         "authors": ["Zoë Müller"], "published": "2024-01-02", "categories": ["cs.LG"],
         "source": "hf-daily", "extras": {"upvotes": 12, "github_repo": "https://github.com/example/linf-sam"}}
PLAIN = {"id": "t:plain-molecules", "title": "Molecular graph networks without code",
         "abstract": "A study of molecular graph networks whose code is not public.",
         "authors": ["Ana Lima"], "published": "2024-01-03", "categories": ["cs.LG"]}
QUERY = "molecular graph networks"


def test_the_card_reads_links_and_upvotes_from_the_source_or_the_abstract():
    coded = Paper.from_dict(CODED)
    assert coded.pdf_url == "https://arxiv.org/pdf/2401.01234"
    assert coded.code_url == "https://github.com/example/linf-sam" and coded.upvotes == 12
    in_abstract = Paper.from_dict({**CODED, "extras": {}})
    assert in_abstract.code_url == "https://github.com/example/linf-sam"   # no trailing "."
    assert in_abstract.upvotes is None
    plain = Paper.from_dict(PLAIN)
    assert (plain.pdf_url, plain.code_url, plain.upvotes, plain.links()) == (None, None, None, [])


def test_search_and_recommend_json_carry_abstract_code_and_upvotes(cli_env, tmp_path):
    papers = tmp_path / "papers.jsonl"
    papers.write_text("\n".join(json.dumps(p) for p in (CODED, PLAIN)) + "\n")
    paperbot("ingest", str(papers), env=cli_env)
    found = {r["id"]: r for r in json.loads(paperbot("search", QUERY, "--json", env=cli_env).stdout)}
    assert found["2401.01234"]["code_url"] == "https://github.com/example/linf-sam"
    assert found["2401.01234"]["upvotes"] == 12 and found["2401.01234"]["abstract"] == CODED["abstract"]
    assert found["2401.01234"]["pdf_url"] == "https://arxiv.org/pdf/2401.01234"
    assert found["t:plain-molecules"]["code_url"] is None and found["t:plain-molecules"]["upvotes"] is None
    paperbot("subscribe", "--user", "console:local:ana", QUERY, env=cli_env)
    picks = json.loads(paperbot("recommend", "--user", "console:local:ana", "--json", env=cli_env).stdout)
    assert {"abstract", "code_url", "upvotes"} <= set(picks[0])


def test_the_console_card_shows_pdf_code_and_upvotes(rec):
    rec.add_papers([CODED, PLAIN])
    shown = ConsoleSession(rec, "ana").handle(f"search {QUERY}")
    assert ("PDF https://arxiv.org/pdf/2401.01234 · code https://github.com/example/linf-sam · "
            "▲ 12 upvotes") in shown
    plain_card = next(card for card in shown.split("\n\n") if "Molecular graph networks without" in card)
    assert "upvotes" not in plain_card and "PDF" not in plain_card and "code http" not in plain_card


async def test_the_slack_card_links_pdf_and_code(slack_h, rec):
    rec.add_papers([CODED, PLAIN])
    await slack_h.command(f"search {QUERY}", "card")
    posted = await eventually(lambda: [c.body for c in slack_h.fake.calls_to("chat.postMessage")
                                       if "Sharpness-aware" in json.dumps(c.body)])
    contexts = [e["text"] for b in posted[0]["blocks"] if b["type"] == "context"
                for e in b["elements"] if e["type"] == "mrkdwn"]
    assert ("<https://arxiv.org/pdf/2401.01234|PDF> · <https://github.com/example/linf-sam|code> · "
            "▲ 12 upvotes") in contexts


async def test_the_discord_card_links_pdf_and_code(discord_fake, rec):
    rec.add_papers([CODED, PLAIN])
    bot = await RunningBot(discord_fake, rec, guild_id=discord_fake.guild_id).start()
    try:
        answer = await ask(discord_fake, "search", query=QUERY, messages=3)
    finally:
        await bot.close()
    embeds = [e for m in answer.visible for e in m.get("embeds") or []]
    coded = next(e for e in embeds if e["title"].startswith("Sharpness"))
    fields = {f["name"]: f["value"] for f in coded.get("fields") or []}
    assert fields["Links"] == ("[PDF](https://arxiv.org/pdf/2401.01234) · "
                               "[code](https://github.com/example/linf-sam)")
    assert fields["Upvotes"] == "▲ 12"
    plain = next(e for e in embeds if e["title"].startswith("Molecular"))
    assert {f["name"] for f in plain.get("fields") or []}.isdisjoint({"Links", "Upvotes"})
