"""Times as the portal writes them: in UTC, and how long until (or since) a deadline."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def time_left(deadline: datetime, now: datetime | None = None) -> str:
    """``"2 days 3 hours left"``, ``"40 minutes left"``, or ``"5 hours ago"`` once past."""
    seconds = int((deadline - (now or datetime.now(UTC))).total_seconds())
    words = _span(abs(seconds))
    return f"{words} left" if seconds >= 0 else f"{words} ago"


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        parts = [_unit(days, "day")] + ([_unit(hours, "hour")] if hours else [])
    elif hours:
        parts = [_unit(hours, "hour")] + ([_unit(minutes, "minute")] if minutes else [])
    else:
        parts = [_unit(minutes, "minute")] if minutes else ["less than a minute"]
    return " ".join(parts)


def _unit(count: int, name: str) -> str:
    return f"{count} {name}{'s' if count != 1 else ''}"
