"""The console's daily digest: `dm HH:MM TZ` in the terminal, printed by the same scheduler as
`paperbot serve` when it is due (simulated clock), and reactions by number on what it printed."""

from __future__ import annotations

import io
import os
import threading
import time

from bot.console import ConsolePoster, ConsoleSession, run_console
from bot.settings import BotSettings
from bot.scheduler import Scheduler
from testkit.scheduler_fakes import SimClock, at, fast_settings


async def test_the_dm_digest_is_printed_when_due_and_can_be_reacted_to(rec, demo):
    clock = SimClock(at("2026-06-08T23:00Z"))            # Tuesday 08:00 in Tokyo
    session = ConsoleSession(rec, "ana", now=clock)
    session.handle("subscribe graph neural networks")
    assert "(next: Tue 9 Jun 09:00)" in session.handle("dm 09:00 Asia/Tokyo")
    printed: list[str] = []
    scheduler = Scheduler(rec, {"console": ConsolePoster(session, printed.append)},
                          fast_settings(), clock, "console")
    assert await scheduler.tick() == [] and printed == []
    clock.set(at("2026-06-09T00:00Z"))                   # 09:00 in Tokyo
    await scheduler.tick()
    assert printed[0].startswith("📰 Today's picks for you, Tue 9 Jun: 5 new papers\n\n[1] ")
    assert [p.split("]")[0] for p in printed[1:]] == ["[2", "[3", "[4", "[5"]
    second = session.last.results[1].paper
    assert second.title in printed[1]
    assert "More like this" in session.handle("like 2")
    assert rec.people.feedback("console:local:ana")[second.id]["rating"] == "like"
    await scheduler.tick()
    assert len(printed) == 5                              # once a day


def test_the_console_prints_the_digest_while_waiting_for_input(rec, demo):
    clock = SimClock(at("2026-06-09T08:59Z"))
    read_end, write_end = os.pipe()
    stdin, typing = os.fdopen(read_end, "r"), os.fdopen(write_end, "w")
    stdout = io.StringIO()
    console = threading.Thread(target=run_console, args=(rec, "bo", stdin, stdout),
                               kwargs={"settings": BotSettings(scheduler=fast_settings(), clock=clock)},
                               daemon=True)
    console.start()

    def type_line(line: str, expect: str, timeout: float = 30) -> None:
        typing.write(line + "\n")
        typing.flush()
        deadline = time.monotonic() + timeout
        while expect not in stdout.getvalue():
            assert time.monotonic() < deadline, f"no {expect!r} in:\n{stdout.getvalue()}"
            time.sleep(0.02)

    type_line("subscribe speech recognition", "You now follow")
    type_line("dm 09:00 UTC", "Your picks will come as a direct message: 09:00 UTC")
    clock.set(at("2026-06-09T09:00Z"))                   # nothing typed: the digest arrives
    deadline = time.monotonic() + 30
    while "[3]" not in stdout.getvalue():
        assert time.monotonic() < deadline, stdout.getvalue()
        time.sleep(0.02)
    assert "📰 Today's picks for you, Tue 9 Jun: 5 new papers" in stdout.getvalue()
    type_line("save 1", "🔖 Saved.")
    typing.write("quit\n")
    typing.flush()
    console.join(20)
    assert not console.is_alive()
    assert rec.profile("console:local:bo")["counts"]["save"] == 1
    stdin.close()
    typing.close()
