"""get_time: the current date and time in an IANA time zone (zoneinfo + tzdata)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone as _dt_timezone
from typing import Any

# IANA keys are ASCII path segments like "America/Argentina/Buenos_Aires", "Etc/GMT+5", "EST5EDT".
# Anything else (absolute paths, "..", dots, spaces, NULs) is refused before zoneinfo sees it.
_KEY_RE = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")
_MAX_KEY_LEN = 64


def _format_offset(offset: timedelta | None) -> str:
    if offset is None:
        return "+00:00"
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hours, rem = divmod(total, 3600)
    minutes, seconds = divmod(rem, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    if seconds:
        text += f":{seconds:02d}"
    return text


def _suggest(key: str) -> str | None:
    """A case-insensitive match among the known zones, for the error message."""
    try:
        import zoneinfo

        lowered = key.lower()
        for name in zoneinfo.available_timezones():
            if name.lower() == lowered:
                return name
    except Exception:
        pass
    return None


def _unknown(key: Any) -> ValueError:
    shown = key if isinstance(key, str) and len(key) <= _MAX_KEY_LEN else None
    label = repr(shown) if shown is not None else "that name"
    hint = _suggest(shown) if shown and _KEY_RE.fullmatch(shown) else None
    if hint:
        return ValueError(f"unknown time zone {label}; did you mean {hint!r}?")
    return ValueError(f"unknown time zone {label}; use an IANA name like 'Europe/Paris'")


def _load_zone(name: str):
    import zoneinfo

    if not _KEY_RE.fullmatch(name) or len(name) > _MAX_KEY_LEN:
        raise _unknown(name)
    try:
        return zoneinfo.ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError (a KeyError), ValueError for bad files/paths, OSError, ...
        pass
    if name in ("UTC", "Etc/UTC"):
        return _dt_timezone.utc  # works even with no time zone database at all
    if not _has_zone_data():
        raise ValueError("no IANA time zone database on this machine; install the 'tzdata' Python package")
    raise _unknown(name)


def _has_zone_data() -> bool:
    try:
        import zoneinfo

        return bool(zoneinfo.available_timezones())
    except Exception:
        return False


def time_in_zone(timezone: str, now: datetime) -> dict[str, Any]:
    """The get_time result for the aware datetime `now` (separate so tests can fix the clock)."""
    if not isinstance(timezone, str):
        raise ValueError("timezone must be a string IANA name like 'Europe/Paris'")
    name = timezone.strip() or "UTC"
    zone = _load_zone(name)
    local = now.astimezone(zone)
    return {
        "timezone": name,
        "datetime": local.isoformat(timespec="seconds"),
        "utc_offset": _format_offset(local.utcoffset()),
        "abbreviation": local.tzname() or "",
        "weekday": local.strftime("%A"),
    }


def get_time(timezone: str = "UTC") -> dict[str, Any]:
    """Current date and time in `timezone`, an IANA name such as 'America/Los_Angeles'."""
    return time_in_zone(timezone, datetime.now(_dt_timezone.utc))
