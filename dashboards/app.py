"""revintel — the Streamlit app (multipage, ``st.navigation``).

Run: ``streamlit run dashboards/app.py`` (with ``REVINTEL_DATA_DIR`` pointing at the data
directory). Each page is a script in ``dashboards/views/`` (not ``pages/``: Streamlit would also list that folder on its own); to add one, add one line to
``PAGES`` in ``dashboards/pages.py``: ``(file, title, material icon, url_path)``. The page is then served at
``/<url_path>``; the first entry is the default page (also served at ``/``).

Pages read the warehouse through ``dashboards.db``. A page that queries a table the
published file does not have yet (or runs before anything was published) gets a friendly
"not built yet" / "no data yet" message from the wrapper below instead of a traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb
import streamlit as st

_HERE = Path(__file__).resolve().parent
if str(_HERE.parent) not in sys.path:  # make `dashboards` / `revintel_*` importable uninstalled
    sys.path.insert(0, str(_HERE.parent))

from dashboards import db  # noqa: E402
from dashboards.pages import PAGES  # noqa: E402



def _age(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _sidebar_status() -> None:
    with st.sidebar:
        published = db.published_at()
        if published is None:
            st.caption(":material/database: No warehouse published yet")
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(published))
            st.caption(
                f":material/database: Warehouse published {stamp} "
                f"({_age(time.time() - published)})",
                help=str(db.db_path()),
            )


def _serve_default_at_its_path(url_path: str) -> None:
    """Streamlit serves the default page only at "/", and "/home" (its own url_path, what a user
    types or bookmarks) would open "Page not found". A request for that path is pointed at the
    default page instead. Private Streamlit state (1.67): without it, "/" still works."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        pages = get_script_run_ctx().pages_manager
        if pages.intended_page_name == url_path and not pages.intended_page_script_hash:
            pages.set_script_intent("", "")
    except Exception:  # noqa: BLE001 - another Streamlit version: keep the old behaviour
        pass


def main() -> None:
    st.set_page_config(page_title="revintel", page_icon=":material/insights:", layout="wide")
    st.set_option("client.toolbarMode", "viewer")  # no "Deploy" button for analysts
    pages = [
        st.Page(_HERE / "views" / file, title=title, icon=icon, url_path=url, default=(i == 0))
        for i, (file, title, icon, url) in enumerate(PAGES)
    ]
    _serve_default_at_its_path(PAGES[0][3])
    page = st.navigation(pages, position="sidebar", expanded=True)
    st.logo(
        "data:image/svg+xml;utf8,"
        "<svg xmlns='http://www.w3.org/2000/svg' width='120' height='28'>"
        "<text x='0' y='21' font-family='sans-serif' font-size='20' font-weight='700' "
        "fill='%23ff4b4b'>revintel</text></svg>",
        size="large",
    )
    _sidebar_status()
    try:
        page.run()
    except db.NoDataYet:
        db.show_no_data()
    except db.MissingTables as exc:
        db.show_missing_tables(exc.tables)
    except duckdb.CatalogException as exc:  # a table/column that is not built yet
        st.info(
            "**Not built yet** — this page reads a table or column the published warehouse "
            "does not have. Run `revintel demo` (or materialize the missing assets) and "
            "reload this page.",
            icon=":material/hourglass_empty:",
        )
        with st.expander("Details"):
            st.code(str(exc), language=None)


main()
