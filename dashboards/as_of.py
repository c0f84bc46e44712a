"""The banner for an as-of date past the data (docs/CONTRACT.md §4: scores never run past the
data, and the app says so when asked for one).

A page calls `warn_if_past_the_data(as_of)` with the date it shows (the selected one, or the
latest); the data's last date is the export date of the loaded source in meta.source.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboards import db, safe


def past_the_data(as_of: dt.date | None, last: dt.date | None) -> str | None:
    """The banner text for `as_of` after the data's last date `last`, else None. Scores dated past
    the data call deals "open" that the export simply knows nothing more about."""
    if as_of is None or last is None or as_of <= last:
        return None
    return (f"**As of {as_of} is after the data's last date ({last}).** The source holds nothing after "
            f"{last}: these figures are the data as it was on {last}, not news from {as_of}, and deals "
            f"still open on {last} are unknown since, not stalled.")


def data_last_date() -> dt.date | None:
    """The export date of the loaded source, None when the warehouse has none."""
    if not db.table_exists("meta.source"):
        return None
    return db.scalar("SELECT max(export_date)::DATE FROM meta.source")


def warn_if_past_the_data(as_of: dt.date | None) -> None:
    text = past_the_data(as_of, data_last_date())
    if text:
        st.warning(text, icon=":material/event_busy:")


def unscored_request(asked: str | None, dates: list, last: dt.date | None) -> str | None:
    """The banner text when a URL asks for an as-of date (`?as_of=`) that is not among the scored
    `dates`: the page shows its latest date instead, and said nothing (an audit: ?as_of=2027-01-01
    showed 2025-12-31 and rewrote the URL)."""
    if not asked or asked in {str(d) for d in dates}:
        return None
    try:
        day = dt.date.fromisoformat(asked)
    except ValueError:
        # the URL's text as text (safe.md): "?as_of=x [sign in again](http://phish)" rendered a live link
        return f"**?as_of={safe.md(asked)} is not a date.** Showing the latest scored date instead."
    if last is not None and day > last:
        return (f"**{day} is after the data's last date ({last}):** nothing is scored past the data. Showing the "
                "latest scored date instead.")
    return f"**{day} is not a scored as-of date** (the weekly dates and the export date are). Showing the latest instead."


def warn_if_unscored_request(dates: list) -> None:
    """Call before the as-of widget that binds `?as_of=`: it replaces an unknown value silently."""
    text = unscored_request(st.query_params.get("as_of"), dates, data_last_date())
    if text:
        st.warning(text, icon=":material/event_busy:")
