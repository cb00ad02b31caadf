"""What each command does, once for every platform: a Command in, a plain Reply out.

Adapters translate platform events into `run(command, who)` calls and render the Reply in their
own idiom (Block Kit, embeds, terminal text). Nothing here knows which platform asked.
"""

from __future__ import annotations

import logging

import redis

from recommender import PaperNotFound, Recommender, StoreUnavailable
from recommender.redis_errors import CLUSTER_DOWN, REFUSED

from .channel_roles import ChannelRoles
from .commands import HELP, Command
from .library_actions import LibraryActions
from .preference_actions import PreferenceActions
from .reply import Reply, Who
from .limits import EXPENSIVE, RateLimiter
from .scheduler.due import next_due, zone
from .scheduler.schedules import ScheduleStore
from .scheduler.settings import Clock, system_clock
from .scheduler.weekly import first_post_seq

log = logging.getLogger(__name__)

DEFAULT_K = 5
# Redis is down or unreachable: what every adapter answers as "temporarily unavailable". A
# connection that breaks mid-run raises redis-py's own errors, not StoreUnavailable. A Redis that
# answers but refuses writes (READONLY, OOM, MISCONF, NOREPLICAS: `REFUSED`) is down as well,
# and so is a cluster that lost a primary (`CLUSTER_DOWN`).
STORE_DOWN = (StoreUnavailable, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
              *REFUSED, *CLUSTER_DOWN)


class Actions(PreferenceActions, LibraryActions):
    def __init__(self, recommender: Recommender, now: Clock = system_clock,
                 limiter: RateLimiter | None = None):
        self.rec = recommender
        self.now = now
        self.schedules = ScheduleStore(recommender.store.r, recommender.store.prefix)
        self.limiter = limiter or RateLimiter(recommender.store.r, recommender.store.prefix)

    def run(self, command: Command, who: Who) -> Reply:
        handler = getattr(self, "do_" + command.name.replace(" ", "_").replace("-", "_"), None)
        if handler is None:
            return self.do_help(command, who)
        if command.name in EXPENSIVE:
            wait = self.limiter.check(who.person)
            if wait:
                log.info("rate limit: %s asked too often (%s)", who.person, command.name)
                return Reply(self.limiter.slow_down(wait))
        try:
            return handler(command, who)
        except (PaperNotFound, ValueError) as exc:
            return Reply(str(exc))

    def do_help(self, command: Command, who: Who) -> Reply:
        """The command list; a malformed command gets its one-line note (with a hint) instead."""
        return Reply(command.note or HELP)

    def do_search(self, command: Command, who: Who) -> Reply:
        results = self.rec.search(command.text, k=DEFAULT_K)
        if not results:
            return Reply("No papers yet: ingest some first (see `paperbot ingest --help`).")
        return Reply(f"Papers matching “{command.text}”:", results)

    def do_similar(self, command: Command, who: Who) -> Reply:
        results = self.rec.similar(command.text, k=DEFAULT_K)
        paper = self.rec.get_paper(command.text)
        return Reply(f"Papers similar to “{paper.title}”:", results)

    def do_subscribe(self, command: Command, who: Who) -> Reply:
        return self._subscribe(who.person, command.text, "You")

    def do_unsubscribe(self, command: Command, who: Who) -> Reply:
        return self._unsubscribe(who.person, command.text, "You")

    def do_channel_subscribe(self, command: Command, who: Who) -> Reply:
        return self._subscribe(self._channel(who), command.text, "This channel", ephemeral=False)

    def do_channel_unsubscribe(self, command: Command, who: Who) -> Reply:
        return self._unsubscribe(self._channel(who), command.text, "This channel", ephemeral=False)

    def _channel(self, who: Who) -> str:
        if who.channel is None:
            raise ValueError("Channel settings can only be changed from inside a channel.")
        return who.channel

    def _subscribe(self, target: str, topic: str, subject: str, ephemeral: bool = True) -> Reply:
        added = self.rec.subscribe(target, topic)
        verb = "now follow" if subject == "You" else "now follows"
        done = f"{subject} {verb} “{topic}”." if added else f"“{topic}” was followed already."
        return Reply(f"{done} Topics: {self._topic_list(target)}", ephemeral=ephemeral)

    def _unsubscribe(self, target: str, topic: str, subject: str, ephemeral: bool = True) -> Reply:
        if not self.rec.unsubscribe(target, topic):
            return Reply(f"“{topic}” is not followed. Topics: {self._topic_list(target)}")
        return Reply(f"Unfollowed “{topic}”. Topics: {self._topic_list(target)}", ephemeral=ephemeral)

    def _topic_list(self, target: str) -> str:
        topics = self.rec.topics(target)
        return ", ".join(f"“{t}”" for t in topics) if topics else "none"

    def do_topics(self, command: Command, who: Who) -> Reply:
        lines = [f"You follow: {self._topic_list(who.person)}",
                 *self.preference_lines(who.person, "Your")]
        if who.channel:
            lines += [f"This channel follows: {self._topic_list(who.channel)}",
                      *self.preference_lines(who.channel, "This channel's")]
        return Reply("\n".join(lines))

    def do_digest(self, command: Command, who: Who) -> Reply:
        if not self._has_interests(who.person):
            return Reply(NOTHING_TO_GO_ON)
        picks = self.rec.recommend(who.person, k=DEFAULT_K)
        if not picks:
            return Reply("No new papers for you right now; you have seen all the good ones.")
        self.rec.mark_shown(who.person, [r.paper.id for r in picks])
        return Reply("Your picks:", picks)

    def _has_interests(self, person: str) -> bool:
        """Whether picks have anything to go on: a topic, or a paper liked or saved (a
        dislike alone only says what to avoid)."""
        if self.rec.topics(person) or self.rec.preferences.get(person).follows:
            return True
        return any(s.get("rating") == "like" or s.get("saved")
                   for s in self.rec.people.feedback(person).values())

    def do_profile(self, command: Command, who: Who) -> Reply:
        """Where a person stands now: topics, and the papers they like, dislike and saved."""
        profile = self.rec.profile(who.person, recent=0)
        counts = profile["counts"]
        lines = [f"Topics: {self._topic_list(who.person)}",
                 f"Feedback: {counts['like']} 👍 · {counts['dislike']} 👎 · {counts['save']} 🔖"
                 f" · {profile['shown']} papers shown", *self.preference_lines(who.person, "Your")]
        state = sorted(self.rec.people.feedback(who.person).items(), key=lambda kv: -kv[1]["ts"])
        groups = [(label, [pid for pid, st in state if wanted(st)])
                  for label, wanted in PROFILE_GROUPS]
        listed = list(dict.fromkeys(pid for _, ids in groups for pid in ids[:PROFILE_LIST]))
        titles = {pid: paper.title for pid, paper in
                  zip(listed, self.rec.store.get_papers(listed)) if paper}
        for label, ids in groups:
            if ids:
                lines.append(f"{label} ({len(ids)}):")
                lines += [f"  • {titles.get(pid, pid)} ({pid})" for pid in ids[:PROFILE_LIST]]
                if len(ids) > PROFILE_LIST:
                    lines.append(f"  … and {len(ids) - PROFILE_LIST} more")
        if not state:
            lines.append("No reactions yet: 👍 👎 🔖 on papers teach paperbot what you like.")
        return Reply("\n".join(lines))

    def do_saved(self, command: Command, who: Who) -> Reply:
        saved = self.rec.profile(who.person, recent=0)["saved"]
        if not saved:
            return Reply("You haven't saved any papers yet (react 🔖 to one).")
        return Reply("Your saved papers:\n" + "\n".join(f"• {s['title']} {s['url']}" for s in saved))

    # -- daily and weekly posts -----------------------------------------------------------
    def do_channel_time(self, command: Command, who: Who) -> Reply:
        schedule = self._schedule(self._channel(who), "channel", command)
        daily = "" if schedule.cadence == "weekly" else "daily "   # describe() says "weekly"
        text = f"This channel's {daily}picks: {schedule.describe()}{self._next_post(schedule)}."
        if not self.rec.topics(schedule.target):
            text += (" It follows no topics yet, so there is nothing to pick: add one with "
                     "`channel subscribe <topic>`.")
        return Reply(text, ephemeral=False)

    def do_channel_weekly(self, command: Command, who: Who) -> Reply:
        """`channel weekly <day> HH:MM zone` (the day in `text`): `channel time`, weekly."""
        return self.do_channel_time(command, who)

    def do_channel_off(self, command: Command, who: Who) -> Reply:
        again = self._turn_on_again(self._channel(who), "channel time", "channel weekly")
        if not self.schedules.disable(self._channel(who), self.now()):
            return Reply("This channel has no daily picks to turn off.")
        return Reply(f"This channel's {again[0]} picks are off. {again[1]} "
                     "turns them on again.", ephemeral=False)

    def do_dm(self, command: Command, who: Who) -> Reply:
        schedule = self._schedule(who.person, "dm", command)
        text = (f"Your picks will come as a direct message: {schedule.describe()}"
                f"{self._next_post(schedule)}.")
        if not self.rec.topics(who.person):
            text += " You follow no topics yet: add one with `subscribe <topic>`."
        return Reply(text)

    def do_dm_weekly(self, command: Command, who: Who) -> Reply:
        """`dm weekly <day> HH:MM zone`: `dm`, weekly."""
        return self.do_dm(command, who)

    def do_dm_off(self, command: Command, who: Who) -> Reply:
        again = self._turn_on_again(who.person, "dm", "dm weekly")
        if not self.schedules.disable(who.person, self.now()):
            return Reply("You have no daily direct message to turn off.")
        return Reply(f"Your {again[0]} direct message is off. {again[1]} turns it on again.")

    def _turn_on_again(self, target: str, daily: str, weekly: str) -> tuple[str, str]:
        """("daily"/"weekly", the command that turns the target's posts on again)."""
        old = self.schedules.get(target)
        if old is not None and old.cadence == "weekly":
            return "weekly", f"`{weekly} <day> HH:MM <time zone>`"
        return "daily", f"`{daily} HH:MM <time zone>`"

    def _schedule(self, target: str, kind: str, command: Command):
        """`channel time` / `dm` make the schedule daily, their `weekly` forms weekly; a new
        cadence's first post takes the papers of the last day (daily) or week (weekly)."""
        now = self.now()
        weekday = command.text if command.name.endswith(" weekly") else None
        cadence = "weekly" if weekday else "daily"
        first = first_post_seq(self.rec.store.r, self.rec.store.prefix, now, cadence=cadence,
                               weekday=weekday, at=command.time, tz=command.tz)
        return self.schedules.set(target, kind, now=now, time=command.time, tz=command.tz,
                                  cadence=cadence, weekday=weekday, after_seq=first)

    def _next_post(self, schedule) -> str:
        when = next_due(schedule.time, schedule.tz, schedule.days, self.now())
        if when is None:
            return ""
        local = when.astimezone(zone(schedule.tz))
        return f" (next: {local:%a} {local.day} {local:%b} {local:%H:%M})"

    def do_forget_me(self, command: Command, who: Who) -> Reply:
        if command.text != "confirm":
            return Reply("This deletes your topics, feedback and history from paperbot, for good. "
                         "To go ahead, send `forget-me confirm`.")
        for person in (who.person, *who.aliases):
            self.forget(person)
        return Reply("Done: paperbot has forgotten everything about you.")

    def forget(self, person: str) -> int:
        """Delete everything kept about a person: their keys, their entries in channels, their
        schedule's registry entry, their roles in channels (owner, topics added) and their
        rate-limit counters. Returns the keys removed."""
        self.schedules.forget(person)
        ChannelRoles(self.rec.store.r, self.rec.store.prefix).forget(person)
        removed = self.rec.forget(person)
        self.limiter.forget(person)
        return removed

    def react(self, who: Who, paper_id: str, kind: str) -> Reply:
        """Feedback on a paper: like / dislike / save, unlike / undislike / unsave (one removed
        reaction), or clear (Undo). Reactions and clicks come here through `bot.feedback`;
        the console's `like 2` directly."""
        try:
            changed = self.rec.record_feedback(who.person, paper_id, kind, channel=who.channel)
        except (PaperNotFound, ValueError) as exc:
            return Reply(str(exc))
        label = FEEDBACK_WORDS[kind]
        return Reply(f"{label}." if changed else f"{label} (already noted).")


NOTHING_TO_GO_ON = ("You don't follow any topics yet and haven't liked or saved a paper, so there "
                    "is nothing to pick from. Try `subscribe graph neural networks`, or `search` "
                    "for papers and 👍 or 🔖 the ones you like.")
PROFILE_LIST = 5   # papers listed per group in `profile`
PROFILE_GROUPS = (("👍 More like these", lambda st: st.get("rating") == "like"),
                  ("👎 Less like these", lambda st: st.get("rating") == "dislike"),
                  ("🔖 Saved", lambda st: bool(st.get("saved"))))

FEEDBACK_WORDS = {"like": "👍 More like this", "dislike": "👎 Less like this", "save": "🔖 Saved",
                  "unlike": "👍 removed", "undislike": "👎 removed", "unsave": "🔖 removed",
                  "clear": "Feedback removed"}
