"""Daily (and weekly) posts, exactly once: schedules, due times, the ledger, and the scheduler loop.

- `due.py`        when a post is due: local times in IANA zones, days of the week, DST
- `schedules.py`  per target (channel or person): time, zone, k, days; the registry (Redis)
- `ledger.py`     the per-(target, day) ledger and lease that make a post happen once
- `scheduler.py`  the tick: find due posts, choose the day's picks, send item by item
- `weekly.py`     weekly digests: the first post's span (a week), the week's wording
- `delivery.py`   what a platform's poster provides (send one item, find one sent)
- `pacing.py`     per-channel and global pacing of messages
- `settings.py`   PAPERBOT_SCHEDULER_TICK, PAPERBOT_CATCHUP_HOURS, … and the (test) clock
"""

from .delivery import Delivery, Item, LookupUnavailable, NotDelivered, Poster, Sent
from .due import latest_due, next_due, parse_days
from .ledger import PostLedger
from .schedules import Schedule, ScheduleStore
from .scheduler import Scheduler
from .settings import SchedulerSettings, clock_from_env, system_clock

__all__ = ["Delivery", "Item", "LookupUnavailable", "NotDelivered", "PostLedger", "Poster",
           "Schedule", "ScheduleStore", "Scheduler", "SchedulerSettings", "Sent",
           "clock_from_env", "latest_due", "next_due", "parse_days", "system_clock"]
