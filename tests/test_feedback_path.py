"""One path from a reaction or a click to stored feedback (`bot.feedback`), on both platforms.

The same events, sent through the real Slack app (fake Slack) and the real Discord client (fake
Discord), must leave the same feedback: the platforms only translate events.
"""

from __future__ import annotations

import pytest

from test_discord import RunningBot, ask, papers_in
from test_slack import ALICE, LAB, eventually


@pytest.fixture
async def discord_bot(discord_fake, rec, demo):
    running = await RunningBot(discord_fake, rec, guild_id=discord_fake.guild_id).start()
    yield running
    if not running.task.done():
        await running.close()


def state(rec, person: str, paper: str) -> dict:
    """A person's stored feedback on a paper, without the parts that name the platform or time."""
    return {k: v for k, v in (rec.people.feedback(person).get(paper) or {}).items()
            if k not in ("ts", "channel")}


def kinds(rec, person: str, paper: str) -> list[str]:
    return [e["kind"] for e in rec.profile(person, recent=50)["recent"] if e["paper"] == paper][::-1]


async def test_the_same_events_on_slack_and_discord_leave_the_same_feedback(slack_h, discord_bot, rec):
    slack, fake = slack_h, discord_bot.fake
    # three posted papers on each platform
    await slack.command("search diffusion models for images", "s")
    tss = await eventually(lambda: len(slack.posted_ts()) == 5 and slack.posted_ts())
    on_slack = [(ts, rec.paper_of_post(LAB, ts)) for ts in tss][:3]
    on_discord = papers_in(await ask(fake, "search", query="diffusion models for images", messages=6))[:3]
    slack_person = ALICE
    discord_person = f"discord:{fake.guild_id}:1001"

    async def landed(person: str, paper: str, n: int) -> None:
        """Each event is stored before the next is sent: the platforms deliver events one at a
        time, but the test's two sends are not ordered on the wire without this wait."""
        await eventually(lambda: len(kinds(rec, person, paper)) == n, timeout=30)

    # paper 1: 👍 then 🔖, then 🔖 removed: the like stands
    for n, (emoji, added) in enumerate((("👍", True), ("🔖", True), ("🔖", False)), 1):
        await slack.react("reaction_added" if added else "reaction_removed",
                          {"👍": "+1", "🔖": "bookmark"}[emoji], on_slack[0][0])
        await fake.react(on_discord[0][0], emoji, add=added)
        await landed(slack_person, on_slack[0][1], n)
        await landed(discord_person, on_discord[0][1], n)
    # paper 2: the 🔖 button, then 👎 as a reaction: saved and disliked
    await slack.click("paper_save", on_slack[1][1], "click")
    await fake.interact(fake.click(on_discord[1][0], f"paperbot:fb:save:{on_discord[1][1]}"))
    await landed(slack_person, on_slack[1][1], 1)
    await landed(discord_person, on_discord[1][1], 1)
    await slack.react("reaction_added", "-1", on_slack[1][0])
    await fake.react(on_discord[1][0], "👎")
    # paper 3: an emoji that is no feedback
    await slack.react("reaction_added", "tada", on_slack[2][0])
    await fake.react(on_discord[2][0], "🎉")

    expected = [{"rating": "like", "saved": False}, {"rating": "dislike", "saved": True}, {}]
    for person, posts in ((slack_person, on_slack), (discord_person, on_discord)):
        papers = [paper for _, paper in posts]
        try:
            await eventually(lambda: [state(rec, person, p) for p in papers] == expected
                             and len(kinds(rec, person, papers[0])) == 3, timeout=30)
        except AssertionError:
            raise AssertionError((person, [state(rec, person, p) for p in papers],
                                  [kinds(rec, person, p) for p in papers])) from None
    for (_, slack_paper), (_, discord_paper) in zip(on_slack, on_discord):
        assert kinds(rec, slack_person, slack_paper) == kinds(rec, discord_person, discord_paper)
    assert kinds(rec, discord_person, on_discord[0][1]) == ["like", "save", "unsave"]
    assert kinds(rec, discord_person, on_discord[1][1]) == ["save", "dislike"]
