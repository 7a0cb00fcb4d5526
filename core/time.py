"""Days and dates as a workspace sees them."""

import zoneinfo
from datetime import date, datetime


def local_day(workspace, moment: datetime) -> date:
    """The calendar day of `moment` in the workspace's time zone (budgets, roll-ups and reports count by it)."""
    return moment.astimezone(zoneinfo.ZoneInfo(workspace.time_zone)).date()


def years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a non-leap target year
        return today.replace(year=today.year - years, day=28)
