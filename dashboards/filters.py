"""A filter value chosen on a page that is no longer among its choices (another as-of date, or a newer
run published under an open page) is said, never dropped in silence. Streamlit gives a widget whose
choices changed its default again: an audit's Forecast of division 'GTX Pro' became 'GTK' after a
publish, and Pipeline Risk dropped its Division filter, its totals growing, without a word."""

from __future__ import annotations

import streamlit as st

from dashboards import safe


def note_dropped(name: str, label: str, options: list, chosen) -> None:
    """Remember `chosen` (a value, or a list for a multiselect) under `name`; when the previous choice
    holds values `options` no longer has, say which and what the page shows instead."""
    key = f"_revintel_chosen_{name}"
    before = st.session_state.get(key)
    if isinstance(chosen, list):
        lost = [v for v in (before or []) if v not in options and v not in chosen]
        instead = "the filter no longer holds them" if len(lost) > 1 else "the filter no longer holds it"
    else:
        lost = [before] if before is not None and before != chosen and before not in options else []
        instead = f"showing {safe.md(chosen)}"
    if lost:
        st.caption(f":material/filter_alt_off: {label} {', '.join(map(safe.md, lost))}: not among the choices any "
                   f"more (no data for it on this date, or a newer run was published); {instead}.")
    st.session_state[key] = list(chosen) if isinstance(chosen, list) else chosen
