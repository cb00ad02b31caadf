"""Followed authors and filters (issue 17) through the real Slack app (fake Slack) and the real
discord.py client (fake Discord): a person's and a channel's, with the channel's rights."""

from __future__ import annotations

import pytest
from test_discord import MODERATOR, RunningBot, ask, private
from test_follows_filters import lecun_paper
from test_slack import ALICE, LAB, texts

from testkit.fake_discord import MANAGE_CHANNELS, MEMBER_PERMISSIONS


async def test_slack_follow_filter_and_the_channels_own(slack_h, rec):
    s = slack_h
    rec.add_papers([lecun_paper()])
    await s.command("subscribe speech recognition", "sub")
    await s.command("follow Y. LeCun", "follow")
    assert "You now follow Y. LeCun" in texts(await s.answer("follow"))
    await s.command("digest", "digest")
    digest = texts(await s.answer("digest"))
    assert "Joint-embedding predictive world models" in digest
    assert "by Yann LeCun, whom you follow" in digest
    await s.command("filter exclude speech, robot", "exclude")
    assert "Never in picks: speech, robot" in texts(await s.answer("exclude"))
    assert rec.preferences.get(ALICE).exclude == ("speech", "robot")
    await s.command("filter category cs.LG", "cat")
    await s.command("topics", "topics")
    topics = texts(await s.answer("topics"))
    assert "Your authors: Y. LeCun" in topics and "categories “cs.LG”" in topics
    await s.command("filter wrong", "bad")
    assert "`filter` takes exclude <words>" in texts(await s.answer("bad"))

    # the channel's: its owner sets it up; another member may not change it
    await s.command("channel time 09:00 UTC", "time")
    await s.answer("time")
    await s.command("channel follow Geoffrey Hinton", "chfollow")
    answer = await s.answer("chfollow")
    assert answer["response_type"] == "in_channel"
    assert "This channel now follows Geoffrey Hinton" in texts(answer)
    await s.command("channel filter include diffusion", "chfilter")
    assert "Only papers with: diffusion" in texts(await s.answer("chfilter"))
    await s.command("channel unfollow Geoffrey Hinton", "bob", user="UBOB", user_name="bob")
    assert "Geoffrey Hinton" in rec.preferences.get(LAB).follows.values()
    assert "Traceback" not in texts(await s.answer("bob"))
    assert rec.preferences.get(LAB).include == ("diffusion",)
    picks = rec.picks_for_channel(LAB, k=5) if rec.topics(LAB) else []
    assert all("diffus" in r.paper.text.lower() for r in picks)


async def test_discord_follow_filter_and_the_channels_own(discord_fake, rec, demo):
    fake = discord_fake
    running = await RunningBot(fake, rec, guild_id=fake.guild_id).start()
    try:
        rec.add_papers([lecun_paper()])
        me = f"discord:{fake.guild_id}:1001"
        here = f"discord:{fake.guild_id}:{fake.channel_id}"
        await ask(fake, "subscribe", topic="speech recognition")
        done = await ask(fake, "follow", author="Yann LeCun")
        assert private(done.visible[0]) and "You now follow Yann LeCun" in done.text
        digest = await ask(fake, "digest", messages=4)
        assert "Joint-embedding predictive world models" in str(digest.visible[1])
        assert "by Yann LeCun, whom you follow" in str(digest.visible[1])
        done = await ask(fake, "filter", kind="exclude", value="speech")
        assert "Never in picks: speech" in done.text
        assert rec.preferences.get(me).exclude == ("speech",)
        shown = await ask(fake, "filter", kind="show")
        assert "Your filters: exclude “speech”" in shown.text
        suggest = await fake.interact(fake.slash("unfollow", author="lec", focused="author"))
        await fake.wait_for(lambda: suggest.callbacks)
        assert [c["value"] for c in suggest.callbacks[0]["data"]["choices"]] == ["Yann LeCun"]
        assert "Unfollowed Yann LeCun" in (await ask(fake, "unfollow", author="Y. LeCun")).text
        assert rec.preferences.get(me).follows == {}

        refused = await ask(fake, "channel", "follow", author="Geoffrey Hinton")
        assert "needs the Manage Channels permission" in refused.text
        assert rec.preferences.get(here).follows == {}
        moderator = dict(user_id=MODERATOR, permissions=MEMBER_PERMISSIONS | MANAGE_CHANNELS)
        done = await ask(fake, "channel", "follow", author="Geoffrey Hinton", **moderator)
        assert not private(done.visible[0]) and "This channel now follows Geoffrey Hinton" in done.text
        done = await ask(fake, "channel", "filter", kind="category", value="cs.LG cs.CL", **moderator)
        assert rec.preferences.get(here).categories == ("cs.LG", "cs.CL")
        bad = await ask(fake, "channel", "filter", kind="category", value="biology", **moderator)
        assert "is not an arXiv category" in bad.text
        done = await ask(fake, "channel", "filter", kind="clear", **moderator)
        assert "This channel's filters cleared" in done.text
    finally:
        await running.close()


@pytest.mark.parametrize("text", ["follow", "filter include", "channel follow <!channel>"])
async def test_slack_bad_preferences_get_one_line(slack_h, text):
    await slack_h.command(text, "bad")
    answer = (await slack_h.answer("bad"))["text"]
    assert "Traceback" not in answer and len(answer.strip().splitlines()) == 1
    assert "Commands (type them" not in answer and text.split(" <")[0] in answer   # names it
