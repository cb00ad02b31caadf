"""What people and channels told paperbot: topics, feedback, what they were shown. In Redis.

People and channels are scoped keys, `platform:workspace:id` (`slack:T0123:U0456`,
`discord:<guild>:<user>`, `console:local:alice`), so nothing of one workspace is visible from
another. Every key of one person or channel carries its key as a hash tag, e.g.
`paperbot:{slack:T1:U2}:feedback`, so a Redis Cluster keeps them in one slot.

| key                          | type   | holds                                                      |
|------------------------------|--------|------------------------------------------------------------|
| P {who}:topics               | hash   | normalised topic -> topic as the person wrote it           |
| P {who}:feedback             | hash   | paper id -> JSON {rating: like/dislike/null, saved, ts, channel} |
| P {who}:events               | stream | the last ~EVENTS_MAX feedback events (kind, paper, channel, ts) |
| P {who}:shown                | zset   | paper id -> unix time it was shown (posted or listed)      |
| P {channel}:member_feedback  | hash   | "<person> <paper id>" -> JSON {rating, saved, ts}          |
| P {channel}:posts            | hash   | platform message id -> paper id, for reactions on posts    |
| P {channel}:posts_at         | zset   | platform message id -> unix time it was recorded (pruning) |

The feedback hash is the current state (a repeated reaction changes nothing); the stream is the
history it can be rebuilt from (`repair`). Each change of state and its event are one
transaction (WATCH/MULTI): reactions given at once all stand. The channel's mirror follows
right after (`sync_mirrors`: in a cluster it lives in the channel's slot).

Nothing grows forever: the stream keeps the newest ~EVENTS_MAX events (XADD MAXLEN ~); shown
papers older than SHOWN_DAYS are dropped as new ones are marked; posts older than POSTS_DAYS
are forgotten (a reaction on them is no longer feedback) as new ones are recorded. The feedback
hashes hold one field per paper with a standing reaction (a retraction removes it).
`forget` deletes a person's keys and their entries in channels.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import redis

from . import slots

# like / dislike / save give a signal; un<kind> retracts just that one (a removed reaction: the
# person's other reactions on the paper stand); clear retracts them all (Undo).
RETRACTS = {"unlike": "like", "undislike": "dislike", "unsave": "save"}
KINDS = ("like", "dislike", "save", *RETRACTS, "clear")
MAX_TOPICS = 50
EVENTS_MAX = 10_000      # events kept per person: a year of 25 reactions a day
SHOWN_DAYS = 365         # a paper shown longer ago than this may be shown again
POSTS_DAYS = 365         # a post older than this is forgotten: a reaction on it is no feedback
PRUNE_AT_ONCE = 500      # old posts forgotten per record_post at most (bounded work per call)
READ_STATES_WORK = 25_000   # entries (topics, feedback, shown) one read_states call reads
READ_STATES_EACH = 50       # what one target's reading costs besides its entries, in entries
RECORD_TRIES = 100       # WATCH conflicts (the same person reacting at once) retried
DAY = 86400.0
# no Redis glob characters (`console:local:*` in a SCAN pattern would match everyone), no
# braces (hash tags), no whitespace, controls or bidi overrides in an id
_ID_PART = "[^:\\s{}*?\\[\\]\\\\\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+"
_WHO_RE = re.compile(f"[a-z][a-z0-9_-]*:{_ID_PART}:{_ID_PART}")


def check_who(who: str) -> str:
    """`who` must be a scoped key `platform:workspace:id`; anything else is refused, in one line."""
    if not isinstance(who, str) or not _WHO_RE.fullmatch(who):
        shown = repr(who[:80] if isinstance(who, str) else who)
        raise ValueError(f"{shown} is not a person or channel id: ids look like platform:workspace:id "
                         "(e.g. console:local:alice), without spaces, braces, control characters "
                         "or the pattern characters * ? [ ] \\")
    return who


def workspace_of(who: str) -> str:
    platform, workspace, _ = who.split(":", 2)
    return f"{platform}:{workspace}"


def normalise_topic(topic: str) -> str:
    return " ".join(topic.lower().split())


class PeopleStore:
    def __init__(self, client: redis.Redis, prefix: str = "paperbot:", clock=time.time):
        self.r = client
        self.prefix = prefix
        self.clock = clock   # unix time; a test's clock can live a year in a second
        self._record_post = client.register_script(_RECORD_POST)
        self._read_states = client.register_script(_READ_STATES)

    def key(self, who: str, what: str) -> str:
        return f"{self.prefix}{{{check_who(who)}}}:{what}"

    # -- topics ---------------------------------------------------------------------------
    def add_topic(self, who: str, topic: str) -> bool:
        """True when the topic is new. At most MAX_TOPICS per person or channel."""
        key = self.key(who, "topics")
        norm = normalise_topic(topic)
        if not norm:
            raise ValueError("A topic needs some words, e.g. `subscribe graph neural networks`.")
        if not self.r.hexists(key, norm) and self.r.hlen(key) >= MAX_TOPICS:
            raise ValueError(f"You follow {MAX_TOPICS} topics already; unsubscribe from one first.")
        return bool(self.r.hsetnx(key, norm, " ".join(topic.split())))

    def remove_topic(self, who: str, topic: str) -> bool:
        return bool(self.r.hdel(self.key(who, "topics"), normalise_topic(topic)))

    def topics(self, who: str) -> list[str]:
        return sorted(v.decode() for v in self.r.hvals(self.key(who, "topics")))

    # -- feedback -------------------------------------------------------------------------
    def record(self, person: str, paper_id: str, kind: str, channel: str | None) -> bool:
        """Apply one feedback event (KINDS); True when it changed anything (a repeat, or a
        retraction of what was not given, changes nothing)."""
        if kind not in KINDS:
            raise ValueError(f"feedback must be one of {', '.join(KINDS)}, not {kind!r}")
        if channel is not None and workspace_of(check_who(channel)) != workspace_of(check_who(person)):
            raise ValueError("a person's feedback can only be given in their own workspace")
        key = self.key(person, "feedback")
        with self.r.pipeline(transaction=True) as pipe:
            for _ in range(RECORD_TRIES):
                try:
                    # read, apply and write as one: another reaction of this person in between
                    # (a 👍 and a 🔖 within ms) makes EXEC fail, and this one is applied again
                    pipe.watch(key)
                    raw = pipe.hget(key, paper_id)
                    before: dict[str, Any] | None = json.loads(raw) if raw else None
                    now = round(self.clock(), 3)   # the event's ts, so that a replay gives it
                    after = _apply(before, kind, channel, now)
                    if _same_signal(before, after):
                        return False
                    pipe.multi()
                    if after is None:
                        pipe.hdel(key, paper_id)
                    else:
                        pipe.hset(key, paper_id, json.dumps(after))
                    pipe.xadd(self.key(person, "events"), {
                        "kind": kind, "paper": paper_id, "channel": channel or "", "ts": f"{now:.3f}"},
                        maxlen=EVENTS_MAX, approximate=True)
                    pipe.execute()
                    break
                except redis.WatchError:
                    time.sleep(0.001)
            else:
                raise redis.WatchError(f"{person}'s feedback kept changing; {kind} on {paper_id} "
                                       "not recorded")
        self.sync_mirrors(person, paper_id, {c for c in (channel, (before or {}).get("channel")) if c})
        return True

    def sync_mirrors(self, person: str, paper_id: str, channels: set[str]) -> None:
        """Bring the channels' view of a person's feedback on a paper (`member_feedback`) in
        step with that feedback: set in the channel it was given in, gone from `channels`'
        others. Not part of the feedback's transaction (on a Redis Cluster a channel's keys sit
        in another slot than the person's): it writes what it read, then reads again, and
        writes again if the feedback changed meanwhile (another reaction at once), so that the
        last writer leaves the feedback that stands."""
        field, key = f"{person} {paper_id}", self.key(person, "feedback")
        channels = set(channels)
        raw = self.r.hget(key, paper_id)
        for _ in range(RECORD_TRIES):
            given_in = json.loads(raw).get("channel") if raw else None
            channels.update([given_in] if given_in else [])
            if not channels:
                return
            pipe = self.r.pipeline(transaction=False)
            for channel in channels:
                if channel == given_in:
                    pipe.hset(self.key(channel, "member_feedback"), field, raw)
                else:
                    pipe.hdel(self.key(channel, "member_feedback"), field)
            pipe.execute()
            again = self.r.hget(key, paper_id)
            if again == raw:
                return
            raw = again

    def feedback(self, person: str) -> dict[str, dict[str, Any]]:
        raw = self.r.hgetall(self.key(person, "feedback"))
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def member_feedback(self, channel: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(person, paper id, state) for every member's feedback on this channel's posts."""
        raw = self.r.hgetall(self.key(channel, "member_feedback"))
        out = []
        for field, value in raw.items():
            person, paper_id = field.decode().split(" ", 1)
            out.append((person, paper_id, json.loads(value)))
        return out

    def events(self, person: str, count: int = 10) -> list[dict[str, str]]:
        rows = self.r.xrevrange(self.key(person, "events"), count=count)
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in rows]

    # -- shown ----------------------------------------------------------------------------
    def mark_shown(self, who: str, paper_ids: list[str]) -> None:
        """Remember when each paper was first shown; what was shown SHOWN_DAYS ago goes."""
        if paper_ids:
            now, key = self.clock(), self.key(who, "shown")
            pipe = self.r.pipeline(transaction=False)
            pipe.zadd(key, {pid: now for pid in paper_ids}, nx=True)
            pipe.zremrangebyscore(key, "-inf", f"({now - SHOWN_DAYS * DAY}")
            pipe.execute()

    def shown(self, who: str) -> set[str]:
        return {m.decode() for m in self.r.zrange(self.key(who, "shown"), 0, -1)}

    def seen_any(self, who: str, paper_ids: list[str], channel: bool = False) -> bool:
        """Whether any of `paper_ids` was shown to `who` or reacted to (by them, or for a
        channel by its members), in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zmscore(self.key(who, "shown"), paper_ids)
        if channel:
            pipe.hkeys(self.key(who, "member_feedback"))
        else:
            pipe.hmget(self.key(who, "feedback"), paper_ids)
        shown, feedback = pipe.execute()
        if any(score is not None for score in shown):
            return True
        if channel:
            reacted = {field.decode().split(" ", 1)[1] for field in feedback}
            return not reacted.isdisjoint(paper_ids)
        return any(state is not None for state in feedback)

    def read_states(self, targets: list[tuple[str, bool]],
                    candidates: list[str]) -> list[list[list[bytes]]]:
        """(topics, feedback as HGETALL gives it, shown) of each (person or channel, is it a
        channel), as Redis sends them, read by one script (one round trip, one reply): the
        daily fan-out's read. Only the shown papers among `candidates` come back: a person
        shown a few papers a day for a year has thousands, and only today's candidates matter.
        A script blocks every other client of Redis while it runs (one over 512 people with a
        year of posts each ran 0.15 s), so each call reads at most READ_STATES_WORK entries
        (~5 ms; a target counts READ_STATES_EACH more) and says how many targets it read; the
        next call goes on from there, sent the keys of about twice as many. On a Redis Cluster
        a call reads one slot's targets (a few of 100,000 people), all the first calls go in
        one pipeline, and the shown papers come back whole: the candidates, sent with every
        call, would cost more than they save."""
        few = len(candidates) <= SHOWN_FILTER_UP_TO and not slots.is_cluster(self.r)
        filtered = candidates if few else []
        args = [READ_STATES_WORK, READ_STATES_EACH, *filtered]
        out: list[list[list[bytes]] | None] = [None] * len(targets)
        # (on a cluster one call per slot, all slots' first calls in one pipeline)
        pending = []   # (the targets' places in `targets`, their keys, the next call's window)
        for group in slots.group_by_slot(self.r, range(len(targets)), lambda n: self.key(targets[n][0], "")):
            keys = []
            for n in group:
                who, is_channel = targets[n]
                keys += [self.key(who, "topics"),
                         self.key(who, "member_feedback" if is_channel else "feedback"),
                         self.key(who, "shown")]
            pending.append((group, keys, 256))
        while pending:
            replies = self._run_pipelined(self._read_states, [
                (keys[:3 * window], args) for _, keys, window in pending])
            left = []
            for (group, keys, _), flat in zip(pending, replies):
                read = int(flat[0])
                for n, at in zip(group, range(1, 1 + 3 * read, 3)):
                    out[n] = flat[at:at + 3]
                if read < len(group):
                    left.append((group[read:], keys[3 * read:], max(16, 2 * read)))
            pending = left
        return out

    def _run_pipelined(self, script, calls: list[tuple[list[str], list]]) -> list:
        """`script` once per (keys, args), in one pipeline (per node, on a cluster)."""
        for attempt in (1, 2):
            pipe = self.r.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                return pipe.execute()
            except redis.exceptions.NoScriptError:   # a server that never ran it, or restarted
                if attempt == 2:
                    raise
                script.sha = self.r.script_load(script.script)

    # -- posts ----------------------------------------------------------------------------
    def record_post(self, channel: str, message_id: str, paper_id: str) -> None:
        """Remember which paper a posted message shows, so a reaction on it becomes feedback;
        forget (up to PRUNE_AT_ONCE of) the posts recorded over POSTS_DAYS ago. One script:
        one round trip, as the single HSET was."""
        now = self.clock()
        self._record_post(keys=[self.key(channel, "posts"), self.key(channel, "posts_at")],
                          args=[message_id, paper_id, now, f"({now - POSTS_DAYS * DAY}", PRUNE_AT_ONCE])

    def paper_of_post(self, channel: str, message_id: str) -> str | None:
        raw = self.r.hget(self.key(channel, "posts"), message_id)
        return raw.decode() if raw else None

    # -- forget ---------------------------------------------------------------------------
    def ids_of_user(self, platform: str, user_id: str) -> set[str]:
        """Every id `platform:<any workspace>:<user_id>` that has keys here: one account seen
        in several workspaces (a Discord account is the same person in every server and in
        DMs with the bot), so that forget-me can mean everything."""
        pattern = (_glob_escape(f"{self.prefix}{{{platform}:") + "*"
                   + _glob_escape(f":{user_id}}}:") + "*")
        found = set()
        for key in self.r.scan_iter(match=pattern, count=1000):
            who = key.decode()[len(self.prefix) + 1:].split("}:", 1)[0]
            parts = who.split(":")
            if len(parts) == 3 and parts[0] == platform and parts[2] == user_id:
                found.add(who)
        return found

    def forget(self, person: str) -> int:
        """Delete every key of this person and their entries in channels; returns keys removed."""
        for paper_id, state in self.feedback(person).items():
            if state.get("channel"):
                self.r.hdel(self.key(state["channel"], "member_feedback"), f"{person} {paper_id}")
        keys = list(self.r.scan_iter(match=_glob_escape(f"{self.prefix}{{{check_who(person)}}}:") + "*",
                                     count=1000))
        return int(self.r.delete(*keys)) if keys else 0


def _apply(state: dict[str, Any] | None, kind: str, channel: str | None,
           now: float) -> dict[str, Any] | None:
    """The state after one event (`now`: its time). `record` and `repair` apply only this."""
    if kind == "clear":
        return None
    new = dict(state or {"rating": None, "saved": False})
    if kind == "save":
        new["saved"] = True
    elif kind == "unsave":
        new["saved"] = False
    elif kind in RETRACTS:
        if new["rating"] == RETRACTS[kind]:
            new["rating"] = None
    else:
        new["rating"] = kind
    if new["rating"] is None and not new["saved"]:
        return None
    new["channel"] = channel or (state or {}).get("channel")
    kept = state is not None and (kind in RETRACTS or _same_signal(state, new))
    new["ts"] = state["ts"] if kept else now   # a retraction does not renew what stays
    return new


def _same_signal(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.get("rating"), a.get("saved"), a.get("channel")) == (b.get("rating"), b.get("saved"), b.get("channel"))


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


# Records a post and forgets the oldest (recorded before ARGV[4]), at most ARGV[5] of them.
_RECORD_POST = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
if #old > 0 then
  redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
end
return #old
"""

# Reads the keys of many people and channels at once (on a Redis Cluster, of one slot), as many
# as fit in ARGV[1] entries (a target larger than that is read alone), each target counting
# ARGV[2] more; ARGV[3..]: the candidates. Returns how many targets it read, then their replies.
_READ_STATES = """
local budget, EACH = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {0}
local work = 0
local wanted = {}
for i = 3, #ARGV do wanted[ARGV[i]] = true end
for i = 1, #KEYS, 3 do
  local shown = KEYS[i + 2]
  local cost = EACH + redis.call('HLEN', KEYS[i]) + redis.call('HLEN', KEYS[i + 1]) + redis.call('ZCARD', shown)
  if out[1] > 0 and work + cost > budget then break end
  work = work + cost
  out[1] = out[1] + 1
  out[#out + 1] = redis.call('HVALS', KEYS[i])
  out[#out + 1] = redis.call('HGETALL', KEYS[i + 1])
  if #ARGV == 2 then
    out[#out + 1] = redis.call('ZRANGE', shown, 0, -1)
  else   -- (ZMSCORE of every candidate measured slower, even with 4x more shown than them)
    local kept = {}
    for _, id in ipairs(redis.call('ZRANGE', shown, 0, -1)) do
      if wanted[id] then kept[#kept + 1] = id end
    end
    out[#out + 1] = kept
  end
end
return out
"""
SHOWN_FILTER_UP_TO = 20_000   # candidates sent to _READ_STATES to filter the shown papers
