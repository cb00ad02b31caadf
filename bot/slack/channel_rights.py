"""Who may change a Slack channel through `/papers channel …`.

Anyone in a channel, a guest too, can type a slash command there, so paperbot decides itself:

- the daily post (`channel time`, `channel weekly`, `channel off`, and its followed authors
  and filters: `channel follow`, `channel unfollow`, `channel filter`): the channel's owner
  (whoever set it up: the first to set its daily post or a topic) and the workspace's admins and owners, as
  PAPERBOT_SLACK_CHANNEL_ADMINS says (owner+admins, owner, admins or everyone). A channel
  with no owner recorded but already set up (before paperbot recorded owners, or after its
  owner's forget-me) is the admins' to change, and the first of them to change it owns it.
- topics: every member may add some, at most TOPICS_PER_MEMBER of the channel's 50 each (the
  owner and admins are not limited); a topic is removed by whoever added it, or by those who
  may change the daily post.

Anyone else gets one line that says who may, and the log a line for the operator. Discord
needs no such rule: its channel commands require Manage Channels.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from recommender.people import normalise_topic

from ..actions import Actions, Reply, Who
from ..channel_roles import TOPICS_PER_MEMBER, ChannelPolicy, ChannelRoles
from ..commands import Command
from .identity import WorkspaceRoles

log = logging.getLogger(__name__)

SCHEDULE_CHANGES = ("channel time", "channel weekly", "channel off",   # and what it may hold:
                    "channel follow", "channel unfollow", "channel filter")
TOPIC_CHANGES = ("channel subscribe", "channel unsubscribe")


@dataclasses.dataclass
class Asker:
    """The person behind one command, in one channel, and what is known of their role."""

    who: Who
    channel: str
    team: str
    user: str
    owner: str | None
    fresh: bool           # no owner, no daily post, no topics: the first to set it up owns it
    admin: bool | None = None   # a workspace admin or owner: asked of Slack when it matters


class ChannelRights:
    def __init__(self, actions: Actions, policy: ChannelPolicy = ChannelPolicy(),
                 roles: WorkspaceRoles | None = None):
        self.actions, self.policy = actions, policy
        self.roles = ChannelRoles(actions.rec.store.r, actions.rec.store.prefix)
        self.workspace = roles or WorkspaceRoles()

    async def run(self, client: Any, command: Command, who: Who, team: str, user: str) -> Reply:
        """`actions.run(command, who)`, for a channel change only when this person may."""
        channel = who.channel
        if channel is None or command.name not in SCHEDULE_CHANGES + TOPIC_CHANGES:
            return await asyncio.to_thread(self.actions.run, command, who)
        asker = await asyncio.to_thread(self._asker, who, channel, team, user)
        if command.name in SCHEDULE_CHANGES:
            if not await self._may_manage(client, asker):
                return self._refuse(asker, command, REFUSED_SCHEDULE)
            reply = await asyncio.to_thread(self.actions.run, command, who)
            if command.name in ("channel time", "channel weekly") and asker.owner is None and (
                    asker.fresh or asker.admin):
                await asyncio.to_thread(self.roles.claim, channel, who.person)
            return reply
        if command.name == "channel subscribe":
            return await self._subscribe(client, asker, command)
        return await self._unsubscribe(client, asker, command)

    def _asker(self, who: Who, channel: str, team: str, user: str) -> Asker:
        owner = self.roles.owner(channel)
        fresh = (owner is None and self.actions.schedules.get(channel) is None
                 and not self.actions.rec.topics(channel))
        return Asker(who, channel, team, user, owner, fresh)

    async def _is_admin(self, client: Any, asker: Asker) -> bool:
        if asker.admin is None:
            asker.admin = await self.workspace.is_admin(client, asker.team, asker.user)
        return asker.admin

    async def _may_manage(self, client: Any, asker: Asker) -> bool:
        """May change the daily post (and remove any topic)."""
        if self.policy.everyone:
            return True
        if self.policy.owner and (asker.owner == asker.who.person or asker.fresh):
            return True
        return self.policy.admins and await self._is_admin(client, asker)

    async def _exempt(self, client: Any, asker: Asker) -> bool:
        """Adds topics without a share: the owner (or the one setting the channel up), an admin."""
        if asker.owner == asker.who.person or asker.fresh:
            return True
        return await self._is_admin(client, asker)

    async def _subscribe(self, client: Any, asker: Asker, command: Command) -> Reply:
        person, channel = asker.who.person, asker.channel
        share = None if await self._exempt(client, asker) else TOPICS_PER_MEMBER
        reserved = await asyncio.to_thread(self.roles.reserve_topic, channel, person,
                                           command.text, share)
        if not reserved:
            return self._refuse(asker, command, REFUSED_SHARE)
        try:
            reply = await asyncio.to_thread(self.actions.run, command, asker.who)
        finally:
            await asyncio.to_thread(self.roles.settle_topic, channel, person, command.text)
        if asker.fresh and await asyncio.to_thread(self._follows, channel, command.text):
            await asyncio.to_thread(self.roles.claim, channel, person)
        return reply

    def _follows(self, channel: str, topic: str) -> bool:
        wanted = normalise_topic(topic)
        return any(normalise_topic(t) == wanted for t in self.actions.rec.topics(channel))

    async def _unsubscribe(self, client: Any, asker: Asker, command: Command) -> Reply:
        channel, topic = asker.channel, command.text
        if await asyncio.to_thread(self._follows, channel, topic):   # else: "is not followed"
            added_by = await asyncio.to_thread(self.roles.added_by, channel, topic)
            if added_by != asker.who.person and not await self._may_manage(client, asker):
                return self._refuse(asker, command, REFUSED_TOPIC)
        reply = await asyncio.to_thread(self.actions.run, command, asker.who)
        if not await asyncio.to_thread(self._follows, channel, topic):
            await asyncio.to_thread(self.roles.release_topic, channel, topic)
        return reply

    def _managers(self, joiner: str = "and") -> str:
        """Who may change the channel, in words (with `joiner` between the two kinds)."""
        kinds = [kind for kind, on in (("the person who set up this channel", self.policy.owner),
                                       ("workspace admins", self.policy.admins)) if on]
        return f" {joiner} ".join(kinds) or "its members"

    def _refuse(self, asker: Asker, command: Command, text: str) -> Reply:
        log.info("slack: %s may not change %s (%s; policy %s)", asker.who.person, asker.channel,
                 command.name, self.policy)
        return Reply(text.format(share=TOPICS_PER_MEMBER, managers=self._managers(),
                                 managers_or=self._managers("or")))


REFUSED_SCHEDULE = "Only {managers} can change this channel's daily picks; ask them."
REFUSED_TOPIC = "Only whoever added that topic and {managers} can remove it."
REFUSED_SHARE = ("Each member can add up to {share} of this channel's topics, and you have: remove "
                 "one of yours with `channel unsubscribe <topic>`, or ask {managers_or}.")
