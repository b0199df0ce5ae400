"""Checks of config strings that name outside things: exchange calendars and bar lengths.

They live in the config layer so that ``config validate`` catches a bad ``calendar`` or ``bar`` before any
data is read; ``data.sessions`` re-exports them. exchange_calendars and pandas are imported on use.
"""

from __future__ import annotations

import difflib
import warnings


def calendar_names() -> list[str]:
    import exchange_calendars as xcals

    return sorted(xcals.get_calendar_names(include_aliases=True))


def check_calendar(name: str) -> str:
    """``name`` if it is an exchange_calendars code (or alias), else ``ValueError`` with close matches."""
    names = calendar_names()
    if name in names:
        return name
    close = difflib.get_close_matches(name.upper(), names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown exchange calendar {name!r} (exchange_calendars codes such as XNYS, XNAS, "
                     f"XLON, XTKS{hint})")


def check_bar(text: str) -> str:
    """``text`` if it is a pandas duration of whole seconds, above 0 and below one day, else ``ValueError``."""
    import pandas as pd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            td = pd.Timedelta(text)
    except (ValueError, TypeError) as e:
        raise ValueError(f"bar {text!r} is not a duration such as '1min', '5min', '15min', '1h' ({e})") from None
    if td <= pd.Timedelta(0) or td >= pd.Timedelta(days=1):
        raise ValueError(f"bar {text!r} must be above 0 and below one day (intraday bars)")
    if td.value % 10**9:
        raise ValueError(f"bar {text!r} must be a whole number of seconds")
    return text
