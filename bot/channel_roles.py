"""Who set a channel up, and who added each of its topics: so that on Slack (where anyone in a
channel can type `/papers channel …`) not every member or guest can turn its daily post off,
retime it, or fill its 50-topic cap.

| key                   | type | holds                                                          |
|-----------------------|------|----------------------------------------------------------------|
| P {channel}:roles     | hash | `owner` -> who set the channel up (the first to set its daily |
|                       |      | post or a topic); `topic <normalised topic>` -> who added it   |
| P {person}:channels   | set  | channels whose roles name the person (for `forget-me`)         |

Who may change what is the adapter's to decide (`bot/slack/channel_rights.py`); this keeps the
records. `forget-me` removes a person from every channel's roles (`forget`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import redis

from recommender.people import check_who, normalise_topic

TOPICS_PER_MEMBER = 10   # topics one member (not the owner, not an admin) may add to a channel
POLICY_VARIABLE = "PAPERBOT_SLACK_CHANNEL_ADMINS"


@dataclasses.dataclass(frozen=True)
class ChannelPolicy:
    """Who, besides nobody, may change a Slack channel's daily post and remove its topics:
    its owner (who set it up), the workspace's admins and owners, or everyone in it."""

    owner: bool = True
    admins: bool = True
    everyone: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChannelPolicy:
        raw = (env.get(POLICY_VARIABLE) or "").strip().lower()
        if not raw:
            return cls()
        words = set(raw.replace(",", "+").replace(" ", "").split("+"))
        if words == {"everyone"}:
            return cls(owner=False, admins=False, everyone=True)
        if not words or not words <= {"owner", "admins"}:
            raise ValueError(f"{POLICY_VARIABLE} must be owner+admins (the default), owner, admins "
                             f"or everyone, not {raw[:40]!r}")
        return cls(owner="owner" in words, admins="admins" in words)


class ChannelRoles:
    def __init__(self, client: redis.Redis, prefix: str = "paperbot:"):
        self.r = client
        self.prefix = prefix
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self._forget = client.register_script(_FORGET)

    def key(self, who: str, what: str) -> str:
        return f"{self.prefix}{{{check_who(who)}}}:{what}"

    def owner(self, channel: str) -> str | None:
        raw = self.r.hget(self.key(channel, "roles"), "owner")
        return raw.decode() if raw else None

    def claim(self, channel: str, person: str) -> bool:
        """Record `person` as the channel's owner, unless it has one; True when they now are."""
        if self.r.hsetnx(self.key(channel, "roles"), "owner", check_who(person)):
            self.r.sadd(self.key(person, "channels"), channel)
            return True
        return self.owner(channel) == person

    def added_by(self, channel: str, topic: str) -> str | None:
        raw = self.r.hget(self.key(channel, "roles"), _topic_field(topic))
        return raw.decode().split(" ", 1)[0] if raw else None

    def reserve_topic(self, channel: str, person: str, topic: str,
                      share: int | None = TOPICS_PER_MEMBER) -> bool:
        """Count `topic` as being added by `person`, atomically, before it is added: False
        when they have `share` of the channel's topics already (None: no share). A topic the
        channel follows, or one someone else is adding, needs no room. Call `settle_topic`
        once the topic was (or was not) added; a reservation never settled lapses after
        PENDING_SECONDS, and a topic removed elsewhere (the CLI) stops counting."""
        ok = self._reserve(keys=[self.key(channel, "roles"), self.key(channel, "topics")],
                           args=[_topic_field(topic), normalise_topic(topic), check_who(person),
                                 -1 if share is None else share, PENDING_SECONDS])
        if ok:
            self.r.sadd(self.key(person, "channels"), channel)
        return bool(ok)

    def settle_topic(self, channel: str, person: str, topic: str) -> None:
        """After the subscribe: `person` added `topic` if the channel follows it now, else
        their reservation is dropped."""
        self._settle(keys=[self.key(channel, "roles"), self.key(channel, "topics")],
                     args=[_topic_field(topic), normalise_topic(topic), check_who(person)])

    def release_topic(self, channel: str, topic: str) -> None:
        """The channel no longer follows `topic`: it counts for nobody."""
        self.r.hdel(self.key(channel, "roles"), _topic_field(topic))

    def forget(self, person: str) -> None:
        """Remove `person` from the roles of every channel that names them."""
        index = self.key(check_who(person), "channels")
        for channel in self.r.smembers(index):
            self._forget(keys=[self.key(channel.decode(), "roles")], args=[person])
        self.r.delete(index)


PENDING_SECONDS = 60   # a reservation whose subscribe never finished (a crash) stops counting


def _topic_field(topic: str) -> str:
    return "topic " + normalise_topic(topic)


# A topic field holds "<person>" once added, "<person> <unix time>" while being added.
# KEYS: roles, topics; ARGV: field, normalised topic, person, share (-1: none), pending seconds
_RESERVE = """
local now = tonumber(redis.call('TIME')[1])
local function holder(field, value)   -- who holds a topic field, or nil when it lapsed
  local who, since = string.match(value, '^(%S+) ?(%d*)$')
  if since ~= '' then
    if now - tonumber(since) <= tonumber(ARGV[5]) then return who end
  elseif redis.call('HEXISTS', KEYS[2], string.sub(field, 7)) == 1 then
    return who
  end
  redis.call('HDEL', KEYS[1], field)
  return nil
end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 1 end
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and holder(ARGV[1], held) then return 1 end
local share = tonumber(ARGV[4])
if share >= 0 then
  local mine = 0
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 6) == 'topic ' and holder(all[i], all[i + 1]) == ARGV[3] then
      mine = mine + 1
    end
  end
  if mine >= share then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. ' ' .. now)
return 1
"""
# KEYS: roles, topics; ARGV: field, normalised topic, person
_SETTLE = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
local mine = held and string.match(held, '^(%S+)') == ARGV[3]
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  if mine or not held then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
elseif mine then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
"""
# KEYS: roles; ARGV: person. Every field (owner, topics) that names them.
_FORGET = """
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.match(all[i + 1], '^(%S+)') == ARGV[1] then redis.call('HDEL', KEYS[1], all[i]) end
end
return 1
"""
