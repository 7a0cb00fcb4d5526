"""Days and dates as a workspace sees them."""

import zoneinfo
from datetime import date, datetime, time, timedelta

from django.utils.dateparse import parse_date, parse_datetime

# The dates Cible accepts anywhere it reads one: the database, the time-zone arithmetic (Europe/Paris
# had an offset of +00:09:21 before 1911) and a ten-year window back from any of them all hold here.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999
DATE_RANGE_TEXT = f"between {EARLIEST_YEAR}-01-01 and {LATEST_YEAR}-12-31"


class OutOfDateRange(ValueError):
    """A well-formed date or date-time outside the years Cible accepts."""


def in_date_range(value: date | datetime) -> bool:
    """Whether a date or date-time falls within the years Cible accepts (EARLIEST_YEAR to LATEST_YEAR)."""
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR


def local_day(workspace, moment: datetime) -> date:
    """The calendar day of `moment` in the workspace's time zone (budgets, roll-ups and reports count by it)."""
    return moment.astimezone(zoneinfo.ZoneInfo(workspace.time_zone)).date()


def years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a non-leap target year
        return today.replace(year=today.year - years, day=28)


def moment_parse(value: object, *, time_zone: str, end_of_day: bool = False) -> datetime | None:
    """A date (YYYY-MM-DD) or an ISO 8601 date-time as an aware moment; None if it is neither,
    OutOfDateRange if it is one outside the years Cible accepts (checked before any arithmetic).

    A date is a day of the workspace's calendar: its first instant, or with `end_of_day` its
    last (a campaign that ends on 31 December runs all that day). A date-time without an
    offset is read in the workspace's time zone too.
    """
    if not isinstance(value, str) or len(value) > 40:
        return None
    zone = zoneinfo.ZoneInfo(time_zone)
    try:
        if len(value) == 10:
            day = parse_date(value)
            if day is None:
                return None
            if not in_date_range(day):
                raise OutOfDateRange(value)
            if end_of_day:
                return datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone) - timedelta(microseconds=1)
            return datetime.combine(day, time.min, tzinfo=zone)
        moment = parse_datetime(value)
    except OutOfDateRange:
        raise
    except ValueError:
        return None
    if moment is None:
        return None
    if not in_date_range(moment):
        raise OutOfDateRange(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def duration_iso(value: timedelta) -> str:
    """An ISO 8601 duration, shortest form: P1D, PT1H30M, P7DT12H, PT0.5S; negative as -PT1H."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days, seconds, micro = value.days, value.seconds, value.microseconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if secs or micro:
        clock += f"{secs}.{micro:06d}".rstrip("0") + "S" if micro else f"{secs}S"
    if not days and not clock:
        return "PT0S"
    return f"{sign}P{f'{days}D' if days else ''}{'T' + clock if clock else ''}"


def duration_text(value: timedelta | None) -> str:
    """A duration as a person writes it: "3 days", "1 day 6 hours", "90 minutes"; the ISO form
    when it is not a whole number of minutes (or is negative); "-" when there is none."""
    if value is None:
        return "-"
    if value < timedelta(0) or value.microseconds or value.seconds % 60:
        return duration_iso(value)
    days, minutes = value.days, value.seconds // 60
    hours, minutes = divmod(minutes, 60)
    if not days and not hours and not minutes:
        return "0 minutes"
    if minutes and not days:
        return f"{hours * 60 + minutes} minutes" if hours < 2 else f"{hours} hours {minutes} minutes"
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    return " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n)
