"""Dates and times as an LMS writes them for people, in the instructor's language: read exactly or refused.

Moodle writes the grading worksheet's times with the user's language pack (``strftimedaydatetime``):

- English ``Monday, 5 October 2026, 11:59 PM``
- German ``Montag, 5. Oktober 2026, 23:59``
- French ``lundi 5 octobre 2026, 23:59``
- Spanish ``lunes, 5 de octubre de 2026, 23:59``

(and Italian, Portuguese, Dutch the same way). :func:`parse_local_time` reads these from their parts: the
month *name* in any of :data:`LOCALES` (from the Unicode CLDR, through Babel), the day, the four-digit
year, ``H:MM`` with an optional AM/PM, an optional weekday name (which must be the date's weekday), and the
small words of each language's format ("de", "à"). ISO 8601 (``2026-10-05 23:59``) is read too. Anything
else, a second number, a word it does not know, a weekday that does not match, is an :class:`LMSError`
naming the value: a time is never guessed (a general date parser read ``Montag, 5. Oktober 2026, 23:59``
as 2026-05-07).
"""

from __future__ import annotations

import datetime as dt
import functools
import re

#: Languages whose month and weekday names are read (CLDR locale codes).
LOCALES = ("en", "de", "fr", "es", "it", "pt", "nl")
#: The small words of these languages' date formats ("5 de octubre de 2026", "lundi 5 octobre 2026 à 23:59").
FILLERS = frozenset({"de", "del", "à", "a", "um", "at", "on", "the", "of", "le", "el", "o", "il", "uhr", "h", "om"})
_TOKEN = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?|\d+|[^\W\d_]+(?:-[^\W\d_]+)*\.?")
_MERIDIEM = re.compile(r"\b([ap])\.?\s?m\b\.?", re.I)


class DateError(ValueError):
    """A time an LMS wrote that cannot be read without guessing."""


def _names(kind: str) -> dict[str, int]:
    """Lower-case name (without a trailing dot) -> number, for ``kind`` ``month`` (1-12) or ``weekday``
    (0 = Monday); a name two languages give different numbers is left out (never guessed)."""
    from babel.dates import get_day_names, get_month_names

    found: dict[str, set[int]] = {}
    for locale in LOCALES:
        for context in ("format", "stand-alone"):
            tables = ([get_month_names(w, context, locale) for w in ("wide", "abbreviated")] if kind == "month"
                      else [get_day_names("wide", context, locale)])
            for table in tables:
                for number, name in table.items():
                    found.setdefault(name.casefold().rstrip("."), set()).add(number)
    return {name: numbers.pop() for name, numbers in found.items() if len(numbers) == 1}


@functools.cache
def month_names() -> dict[str, int]:
    return _names("month")


@functools.cache
def weekday_names() -> dict[str, int]:
    return _names("weekday")


def parse_local_time(text: str) -> dt.datetime | None:
    """The naive local time ``text`` says (see the module docstring), None for an empty cell or ``-``.
    Raises :class:`DateError` for anything it cannot read exactly."""
    raw = (text or "").strip()
    if not raw or raw == "-":
        return None
    iso = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2})?)", raw)
    if iso:
        return dt.datetime.fromisoformat(f"{iso[1]} {iso[2]}")
    normal = _MERIDIEM.sub(lambda m: f" {m[1].lower()}m ", raw.replace("\xa0", " ").replace("\u202f", " "))
    day = month = year = hour = minute = weekday = meridiem = None
    second = 0
    problems = []
    for token in _TOKEN.findall(normal.casefold()):
        word = token.rstrip(".")
        if ":" in token:
            if hour is not None:
                problems.append(f"two times ({token})")
            parts = [int(p) for p in token.split(":")]
            hour, minute = parts[0], parts[1]
            second = parts[2] if len(parts) == 3 else 0
        elif token.isdigit():
            if len(token) == 4 and year is None:
                year = int(token)
            elif len(token) <= 2 and day is None:
                day = int(token)
            else:
                problems.append(f"an unexpected number {token}")
        elif word in ("am", "pm"):
            meridiem = word
        elif word in month_names() and month is None:
            month = month_names()[word]
        elif word in weekday_names() and weekday is None:
            weekday = weekday_names()[word]
        elif word not in FILLERS:
            problems.append(f"the word {token!r}")
    missing = [n for n, v in (("day", day), ("month name", month), ("year", year), ("time", hour)) if v is None]
    if missing or problems:
        raise DateError(f"cannot read the time {raw!r}: " + "; ".join(
            ([f"no {', '.join(missing)}"] if missing else []) + problems)
            + f" (a date as Moodle writes it in {', '.join(LOCALES)}, or ISO 8601 like 2026-10-05 23:59)")
    if meridiem is not None:
        if not 1 <= hour <= 12:
            raise DateError(f"cannot read the time {raw!r}: hour {hour} with {meridiem.upper()}")
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    try:
        value = dt.datetime(year, month, day, hour, minute, second)
    except ValueError as err:
        raise DateError(f"cannot read the time {raw!r}: {err}") from None
    if weekday is not None and value.weekday() != weekday:
        raise DateError(f"cannot read the time {raw!r}: {value:%Y-%m-%d} is a {value:%A}, not the weekday it names")
    return value
