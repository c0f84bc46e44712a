"""Real-browser test harness for the Streamlit app (headless Debian Chromium via Playwright).

Used by every dashboard page test::

    import pytest
    from browser import build_analyst_db, streamlit_server, chromium, render_page

    @pytest.mark.browser
    def test_my_page(tmp_path):
        data_dir = tmp_path / "data"
        build_analyst_db(data_dir, extra_sql=["CREATE SCHEMA scores", "CREATE TABLE ..."])
        with streamlit_server(data_dir) as url, chromium() as browser:
            text = render_page(browser, url, "pipeline-risk", name="pipeline_risk",
                               expect_text="Pipeline Risk")
        assert "Critical" in text

``render_page`` saves ``test-artifacts/<name>.png`` (full page) at the repo root — look at it.
No skips: when ``/usr/bin/chromium`` is missing the test fails, saying how to install it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = REPO_ROOT / "dashboards" / "app.py"
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = os.environ.get("REVINTEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# --------------------------------------------------------------------------- fixture data

# What the base fixture holds; tests assert on these numbers.
N_ACCOUNTS = 4
N_OPPORTUNITIES = 7
N_TRANSACTIONS = 12
QUARANTINE = {  # reason -> (file, rows)
    "unparseable close_date": ("sales_pipeline.csv", 2),
    "unknown account": ("sales_pipeline.csv", 1),
    "negative amount": ("transactions.csv", 1),
}
N_QUARANTINED = sum(n for _, n in QUARANTINE.values())

BASE_FIXTURE_SQL: list[str] = [
    "CREATE SCHEMA meta",
    "CREATE SCHEMA star",
    """CREATE TABLE meta.source AS SELECT
         '/data/exports/maventech_crm' AS source_path, 'maventech' AS source_format,
         DATE '2017-12-31' AS export_date, TIMESTAMP '2024-05-02 09:14:00' AS loaded_at,
         ['sales_pipeline.csv', 'accounts.csv', 'products.csv', 'sales_teams.csv',
          'transactions.csv'] AS files""",
    """CREATE TABLE star.dim_account AS SELECT * FROM (VALUES
         ('A1', 'Acme Corp', 'technology', 1200, 1.5e8, 'US', NULL),
         ('A2', 'Betatech', 'retail', 300, 2.0e7, 'DE', NULL),
         ('A3', 'Cancore', 'medical', 4500, 9.9e8, 'US', NULL),
         ('A4', 'Acme Europe', 'technology', 200, 1.1e7, 'FR', 'A1'))
       t(account_id, account_name, sector, employees, annual_revenue, country,
         parent_account_id)""",
    """CREATE TABLE star.fact_opportunity AS SELECT
         'O' || i AS opportunity_id, 'A' || (1 + i % 4) AS account_id, 'R' || (i % 2) AS rep_id,
         'GTX Basic' AS product_id, 'GTX' AS division,
         CASE WHEN i <= 3 THEN 'Won' WHEN i = 4 THEN 'Lost' ELSE 'Engaging' END AS stage,
         DATE '2017-01-01' + (i * 7)::INTEGER AS created_date, 1000.0 * i AS amount,
         i <= 4 AS is_closed, i <= 3 AS is_won
       FROM range(1, 8) r(i)""",
    """CREATE TABLE star.fact_transactions AS SELECT
         'A' || (1 + i % 4) AS account_id, DATE '2017-02-01' + i::INTEGER AS order_date,
         'SKU' || (i % 3) AS product_id, 'GTX' AS division, 1 + i % 5 AS quantity,
         100.0 * i AS amount, 'transactions.csv' AS source
       FROM range(12) r(i)""",
    """CREATE TABLE star.quarantine (source_file VARCHAR, line_number BIGINT, raw_row VARCHAR,
         reason VARCHAR, loaded_at TIMESTAMP)""",
    """CREATE TABLE meta.table_log (table_name VARCHAR, partition_key VARCHAR,
         row_count BIGINT, written_at TIMESTAMP, run_id VARCHAR)""",
    """INSERT INTO meta.table_log VALUES
         ('star.dim_account', NULL, 4, TIMESTAMP '2024-05-02 09:15:00', 'run-1'),
         ('star.fact_opportunity', NULL, 7, TIMESTAMP '2024-05-02 09:15:10', 'run-1'),
         ('star.fact_opportunity', NULL, 7, TIMESTAMP '2024-05-03 07:00:00', 'run-2'),
         ('fact_transactions', NULL, 12, TIMESTAMP '2024-05-02 09:15:20', 'run-1')""",
]


def _quarantine_inserts() -> list[str]:
    out, line = [], 10
    for reason, (file, n) in QUARANTINE.items():
        for _ in range(n):
            out.append(
                "INSERT INTO star.quarantine VALUES "
                f"('{file}', {line}, 'raw,row,{line}', '{reason}', TIMESTAMP '2024-05-02 09:14:30')"
            )
            line += 7
    return out


def analyst_db_path(data_dir: Path) -> Path:
    """Where the app reads: ``<data_dir>/warehouse/revintel.duckdb`` (same as revintel_resources.paths)."""
    return Path(data_dir) / "warehouse" / "revintel.duckdb"


def build_analyst_db(
    data_dir: Path,
    *,
    base: bool = True,
    extra_sql: Sequence[str] = (),
) -> Path:
    """Write a small analyst DuckDB file into ``data_dir`` and return its path.

    ``base=True`` adds the base fixture (meta.source, meta.table_log, star.dim_account,
    star.fact_opportunity, star.fact_transactions, star.quarantine; counts in the module
    constants). ``extra_sql`` statements run afterwards, e.g. to create ``scores.*`` tables
    for a page test. The file is written under a temp name and renamed into place, the way a
    publish swaps it, so a running app never sees it half-written.
    """
    import duckdb

    path = analyst_db_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    tmp.unlink(missing_ok=True)
    statements = [*(BASE_FIXTURE_SQL + _quarantine_inserts() if base else []), *extra_sql]
    con = duckdb.connect(str(tmp))
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- the app server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(
    data_dir: Path, *, app: Path = APP, timeout: float = 45.0, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``streamlit run <app>`` on a free loopback port with ``REVINTEL_DATA_DIR=data_dir``;
    yield its base URL (``http://127.0.0.1:<port>``) once ``/_stcore/health`` answers. The
    process group is always killed at the end; on a start failure the log tail is in the error."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    log_path = Path(data_dir) / f"streamlit-{port}.log"
    child_env = {
        **os.environ,
        "REVINTEL_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited with {proc.returncode} before it was healthy:\n"
                    + _tail(log_path)
                )
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit not healthy after {timeout:.0f}s:\n" + _tail(log_path))
            time.sleep(0.1)
        yield url
    finally:
        _kill_group(proc)


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------- the browser


def require_chromium() -> str:
    """The Chromium binary; fails the test (never skips) when it is not installed."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: browser tests need Debian's chromium "
            "(`apt-get install -y chromium`) or REVINTEL_CHROMIUM=/path/to/chromium.",
            pytrace=False,
        )
    return CHROMIUM


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium ``playwright.sync_api.Browser``, closed at the end."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# One poll of the page: "error" when Streamlit shows an exception, true when the script run
# finished (stApp's script state), nothing shows a skeleton/spinner, every Vega chart has
# drawn and every expected text is on the page.
_JS_STATE = """([expected, allowException]) => {
    if (!allowException && document.querySelector("[data-testid='stException']")) return "error";
    const app = document.querySelector("[data-testid='stApp']");
    if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
    if (document.querySelector("[data-testid='stSkeleton'], [data-testid='stSpinner']")) return false;
    const charts = document.querySelectorAll("[data-testid='stVegaLiteChart']");
    if (![...charts].every(c => c.querySelector("canvas, svg"))) return false;
    const text = document.body.innerText;
    return expected.every(t => text.includes(t)) ? "ok" : false;
}"""


def wait_until_rendered(
    page,
    *,
    expect_text: str | Sequence[str] = (),
    timeout: float = 20.0,
    allow_exception: bool = False,
) -> None:
    """Wait until Streamlit finished rendering (see ``_JS_STATE``) and stays so for a moment.
    Fails at once with the page text when the app shows an exception (unless
    ``allow_exception``), or after ``timeout`` seconds."""
    from playwright.sync_api import TimeoutError as PWTimeout

    expected = [expect_text] if isinstance(expect_text, str) else list(expect_text)
    deadline = time.monotonic() + timeout
    state = None
    try:
        for _ in range(2):  # a rerun may start right after the first idle moment: check twice
            left_ms = max(1.0, (deadline - time.monotonic()) * 1000)
            state = page.wait_for_function(
                _JS_STATE, arg=[expected, allow_exception], timeout=left_ms, polling=100
            ).json_value()
            if state == "error":
                break
            page.wait_for_timeout(200)
    except PWTimeout:
        state = "timeout"
    if state != "ok":
        body = page.locator("body").inner_text()
        what = "shows an exception" if state == "error" else "did not finish rendering"
        raise AssertionError(
            f"page {page.url} {what} (expected text {expected!r}, {timeout:.0f}s)\n"
            f"--- page text ---\n{body[:4000]}"
        )


def render_page(
    browser,
    base_url: str,
    page_path: str = "",
    *,
    name: str,
    expect_text: str | Sequence[str] = (),
    timeout: float = 20.0,
    allow_exception: bool = False,
    viewport: tuple[int, int] = (1400, 900),
) -> str:
    """Open ``base_url/page_path`` (a ``st.Page`` url_path such as ``"home"``; ``""`` is the
    default page, which Streamlit serves only at the root), wait until Streamlit finished rendering, save a full-page screenshot to
    ``test-artifacts/<name>.png`` and return the page's visible text (``innerText``)."""
    ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = ctx.new_page()
    try:
        target = f"{base_url.rstrip('/')}/{page_path.strip('/')}"
        page.goto(target, wait_until="domcontentloaded")
        try:
            for attempt in range(2):
                wait_until_rendered(
                    page, expect_text=expect_text, timeout=timeout, allow_exception=allow_exception
                )
                if not _page_not_found(page) and page.url.rstrip("/") == target.rstrip("/"):
                    break
                if attempt == 1:
                    raise AssertionError(
                        f"the app has no page at /{page_path.lstrip('/')} (Streamlit says "
                        "'Page not found'); use the st.Page url_path, or '' for the default page"
                    )
                # Streamlit shows this modal on the first visit of a non-default page after the
                # server started, before st.navigation ever ran (streamlit#9992): load again.
                page.goto(target, wait_until="domcontentloaded")
        finally:
            screenshot(page, name)
        return page.locator("body").inner_text()
    finally:
        ctx.close()


def _page_not_found(page) -> bool:
    return page.locator("[role='dialog']", has_text="Page not found").count() > 0


def screenshot(page, name: str) -> Path:
    """Full-page screenshot of the app to ``test-artifacts/<name>.png``.

    Streamlit scrolls inside its main container, so the window is resized to the content's
    height first; otherwise a "full page" shot would stop at the viewport."""
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / f"{name}.png"
    height = page.evaluate(
        """() => {
            const m = document.querySelector("[data-testid='stMain']")
                   || document.querySelector("section.main");
            const inner = m && (m.firstElementChild || m);
            return Math.max(document.body.scrollHeight, m ? m.scrollHeight : 0,
                            inner ? inner.scrollHeight : 0);
        }"""
    )
    vp = page.viewport_size or {"width": 1400, "height": 900}
    if height and height > vp["height"]:
        page.set_viewport_size({"width": vp["width"], "height": min(int(height) + 40, 8000)})
        page.wait_for_timeout(250)
    page.screenshot(path=str(out), full_page=True)
    return out
