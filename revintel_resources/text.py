"""Data as literal text inside Markdown, for every place that renders it: the Streamlit pages
(dashboards/safe.py) and the Dagster UI's table previews (revintel_assets/metadata.py)."""

from __future__ import annotations

import re

# Data shown through Markdown (Streamlit's st.markdown, st.info, ...; the Dagster UI's previews):
# an account named "![x](http://host/beacon.png)" or a ?deal= link "[verify](http://phish)"
# would render an image or a link. Data goes in as text: every ASCII punctuation character is
# backslash-escaped (CommonMark renders it literally; this also defuses $math$ and Streamlit's
# :color[...] / :material/...: directives), or as a code span. GFM turns bare URLs and e-mail
# addresses into links after escapes are resolved, so a zero-width space goes between "http" and
# "://", "www" and ".", and before "@" (invisible; measured in Chromium: no link is rendered).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_AUTOLINK = re.compile(r"(?i)(https?|ftp|mailto|www)(?=\\[:.])|(?=\\@)")
ZWSP = "\u200b"


def md(value) -> str:
    """Any value as literal text inside Markdown (one line): no link, image, heading or directive."""
    text = " ".join(str(value).split()) if value is not None else ""
    return _AUTOLINK.sub(lambda m: (m.group(1) or "") + ZWSP, _PUNCTUATION.sub(r"\\\1", text))
