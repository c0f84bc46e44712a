"""Deal warnings, the weekly digest and its webhook (a real local HTTP server), and the digest
schedule that never goes past the data."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading

import dagster as dg
import duckdb
import polars as pl
import pytest

from revintel_assets.defs.pipeline.alerts import AlertRules, alerts_sql

A, C = dt.date(2025, 10, 13), dt.date(2025, 10, 6)


def _warehouse(con):
    con.execute("CREATE SCHEMA IF NOT EXISTS features; CREATE SCHEMA IF NOT EXISTS star; "
                "CREATE SCHEMA IF NOT EXISTS scores")
    con.execute("""CREATE TABLE features.deal_snapshot AS SELECT * FROM (VALUES
        (DATE '2025-10-13', 'stuck', 'r1', 'Engaging', 3.4, 61, 10, 0, DATE '2025-01-01'),
        (DATE '2025-10-13', 'late', 'r1', 'Proposal', 1.0, 10, -12, 1, DATE '2025-09-01'),
        (DATE '2025-10-13', 'pushy', 'r2', 'Proposal', 1.0, 10, 30, 4, DATE '2025-09-01'),
        (DATE '2025-10-13', 'fine', 'r2', 'Proposal', 1.0, 5, 30, 0, DATE '2025-10-01'))
        t(as_of_date, opportunity_id, rep_id, stage, stage_time_ratio, days_in_stage, days_to_expected_close,
          n_pushes, created_date)""")
    con.execute("""CREATE TABLE star.fact_opportunity_history AS SELECT *, false AS derived FROM (VALUES
        ('stuck', DATE '2025-08-13'), ('late', DATE '2025-10-01'), ('pushy', DATE '2025-10-10'),
        ('fine', DATE '2025-12-01'), ('won', DATE '2025-09-01')) t(opportunity_id, changed_at)""")
    # a change log the source has (snapshot.LOGGED_SHARE_SQL: closed deals with a logged change)
    con.execute("CREATE TABLE star.fact_opportunity AS SELECT 'won' AS opportunity_id, true AS is_closed")
    con.execute("""CREATE TABLE scores.pipeline_changes AS SELECT * FROM (VALUES
        (DATE '2025-10-13', DATE '2025-10-06', 'late', 'r1', 'amount_down', 1000.0, 700.0, DATE '2025-10-01', DATE '2025-10-01'),
        (DATE '2025-10-13', DATE '2025-10-06', 'pushy', 'r2', 'pushed_out', 500.0, 500.0, DATE '2025-12-01', DATE '2026-02-01'),
        (DATE '2025-10-13', DATE '2025-10-06', 'fine', 'r2', 'amount_down', 100.0, 95.0, DATE '2025-12-01', DATE '2025-12-01'))
        t(as_of_date, compare_date, opportunity_id, rep_id, category, amount_before, amount_after,
          expected_close_before, expected_close_after)""")
    con.execute("""CREATE TABLE scores.deal_scores AS SELECT * FROM (VALUES
        (DATE '2025-10-06', 'fine', 'r2', 0.60, 'win_probability/1'), (DATE '2025-10-13', 'fine', 'r2', 0.45, 'win_probability/1'),
        (DATE '2025-10-06', 'late', 'r1', 0.50, 'win_probability/1'), (DATE '2025-10-13', 'late', 'r1', 0.48, 'win_probability/1'))
        t(as_of_date, opportunity_id, rep_id, win_probability, model_version)""")
    con.execute("CREATE TABLE star.dim_rep AS SELECT * FROM (VALUES ('r1', 'Mia Park'), ('r2', 'Mia Park')) "
                "t(rep_id, manager)")


def test_each_rule_fires_where_it_should():
    con = duckdb.connect()
    _warehouse(con)
    got = {(r[1], r[3]) for r in con.execute(alerts_sql([str(A)], AlertRules(), scored_dates=[C, A])).fetchall()}
    assert got == {("stuck", "stalled"), ("stuck", "no_activity"), ("late", "close_date_passed"),
                   ("late", "amount_cut"), ("pushy", "pushed_repeatedly"), ("fine", "score_dropped")}
    # a change dated after the as-of date is not activity known then: 'fine' was created 12 days before
    # and changes only on 2025-12-01, so it has been idle for 12 days (a leak would make it -49)
    strict = AlertRules(idle_days=10)
    idle = {r[1] for r in con.execute(alerts_sql([str(A)], strict, scored_dates=[C, A])).fetchall() if r[3] == "no_activity"}
    assert idle == {"stuck", "late", "fine"}  # 'pushy' changed 3 days before
    # a source without a change log says nothing of a deal's activity: no no_activity alert at all
    unlogged = {r[3] for r in con.execute(alerts_sql([str(A)], strict, scored_dates=[C, A], logged_history=False)).fetchall()}
    assert "no_activity" not in unlogged and "stalled" in unlogged
    looser = AlertRules(stalled_ratio=5, pushes=10, amount_cut=0.5, idle_days=365, score_drop=0.5)
    assert {r[3] for r in con.execute(alerts_sql([str(A)], looser, scored_dates=[C, A])).fetchall()} == {"close_date_passed"}


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_score_drop_with_a_new_model_says_so():
    con = duckdb.connect()
    _warehouse(con)
    detail = lambda: [r[4] for r in con.execute(alerts_sql([str(A)], AlertRules(), scored_dates=[C, A])).fetchall()
                      if r[3] == "score_dropped"]
    assert detail() == [f"win probability 60% -> 45% since {C}"]
    con.execute(f"UPDATE scores.deal_scores SET model_version = 'win_probability/2' WHERE as_of_date = DATE '{A}'")
    assert detail() == [f"win probability 60% -> 45% since {C} (model changed: win_probability/1 -> win_probability/2)"]


@pytest.fixture()
def webhook():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook.received
    server.shutdown()


def _digest_run(tmp_path, monkeypatch, url: str):
    """The fixture warehouse's alerts on both dates, then the digest of A posted to `url`: its result."""
    from revintel_assets.defs.deals.partitions import as_of_dates
    from revintel_assets.defs.pipeline.assets import deal_alerts, weekly_digest
    from revintel_resources.resources import WarehouseResource
    from revintel_resources.warehouse import Warehouse

    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REVINTEL_DIGEST_WEBHOOK_URL", url)
    monkeypatch.setenv("REVINTEL_APP_URL", "http://app.example:8501")
    with Warehouse.from_env().connect() as con:
        _warehouse(con)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(as_of_dates.name, [str(C), str(A)])
    resources = {"warehouse": WarehouseResource()}
    for key in (str(C), str(A)):
        assert dg.materialize([deal_alerts], partition_key=key, instance=instance, resources=resources,
                              selection=[deal_alerts]).success
    return dg.materialize([weekly_digest], partition_key=str(A), instance=instance, resources=resources)


def test_digest_asset_writes_files_and_posts_to_a_local_webhook(tmp_path, monkeypatch, webhook):
    url, received = webhook
    assert _digest_run(tmp_path, monkeypatch, url).success
    md = (tmp_path / "data" / "digests" / str(A) / "Mia_Park.md").read_text()
    assert "## r1" in md and "## r2" in md
    assert "[pushy](http://app.example:8501/deal-detail?as_of=2025-10-13&deal=pushy): close 2025-12-01 → 2026-02-01" in md
    assert "close date pushed 4 times" in md  # a new risk
    assert (tmp_path / "data" / "digests" / str(A) / "Mia_Park.html").read_text().count("<h2>") == 2
    assert len(received) == 1 and received[0]["text"] == md


def test_digest_schedule_never_goes_past_the_data(tmp_path, monkeypatch):
    from revintel_assets.defs.deals.partitions import as_of_dates
    from revintel_assets.defs.pipeline.schedules import weekly_digest_schedule
    from revintel_resources.warehouse import Warehouse

    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path / "data"))
    wh = Warehouse.from_env()
    wh.write("meta.source", pl.DataFrame({"export_date": [dt.date(2025, 12, 31)]}))
    wh.publish()
    # a real instance in tmp_path (instance_for_test would leave a global instance behind that later
    # definition loads, in other tests, would open after its directory is gone)
    (tmp_path / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home"))
    instance.add_dynamic_partitions(as_of_dates.name, ["2025-11-17", "2025-11-24", "2025-12-29", "2025-12-31"])
    ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=dt.datetime(2026, 11, 23, 6))
    assert weekly_digest_schedule(ctx).partition_key == "2025-12-31"  # the data's last date, not the tick's
    ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=dt.datetime(2025, 11, 24, 6))
    assert weekly_digest_schedule(ctx).partition_key == "2025-11-17"  # the latest registered date before
    assert len(instance.get_dynamic_partitions(as_of_dates.name)) == 4  # evaluating registered nothing


def test_a_webhook_that_refuses_or_is_gone_is_named_with_its_url():
    """A 500 or a refused connection read 'HTTP Error 500' / 'Connection refused' without naming the
    webhook (an audit): now the URL and what it answered."""
    from revintel_assets.defs.pipeline.digest import WebhookFailed, post_webhook

    class Refuses(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/services/T1/B2/secretToken"
    named = rf"digest webhook http://127.0.0.1:{server.server_port}/… \(REVINTEL_DIGEST_WEBHOOK_URL\)"
    try:
        with pytest.raises(WebhookFailed, match=rf"{named} answered HTTP 500") as e:
            post_webhook(url, "x")
        assert "secretToken" not in str(e.value)  # a Slack webhook's path is its secret: not in logs
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(WebhookFailed, match=rf"{named} could not be reached"):
        post_webhook(url, "x", timeout=2)


def test_data_in_the_digest_is_text_not_markup():
    """An audit: a rep named with an <img> and a Markdown link, a manager with a <script>, a deal id with
    an onerror handler were live in the digest's HTML, and "<!channel>" pinged a Slack channel."""
    from revintel_assets.defs.pipeline.digest import file_names, manager_digest, to_html

    rep = "Ravi <img src=http://h/x.png> [rephish](http://h/l) <!channel>"
    deal = "O<img src=x onerror=alert(1)>)[p](http://h/d"
    moved = pl.DataFrame({"rep_id": [rep], "category": ["won"], "amount_before": [1.0], "amount_after": [None],
                          "opportunity_id": [deal], "expected_close_before": [None], "expected_close_after": [None]},
                         schema_overrides={"amount_after": pl.Float64, "expected_close_before": pl.Date,
                                           "expected_close_after": pl.Date})
    alerts = pl.DataFrame(schema={"rep_id": pl.Utf8, "opportunity_id": pl.Utf8, "alert_type": pl.Utf8,
                                  "detail": pl.Utf8})
    md = manager_digest("<script>fetch(1)</script>Cecily", A, None, moved, alerts, "http://app:8501")
    page = to_html(md, "Pipeline digest — <script>x</script>")
    assert "<script" not in page and "<img" not in page and 'href="http://h/' not in page
    assert "<!channel>" not in md and "&lt;!channel&gt;" in md
    assert page.count("<a href=") == 1 and "deal=O%3Cimg" in page  # the deal's own link, its id encoded
    assert "<li>" in page  # the items are a list, not one paragraph
    names = file_names(["Mia Park", "Mia-Park", "Li Wu"])
    assert names["Mia Park"] != names["Mia-Park"] and names["Li Wu"] == "Li_Wu"


def test_a_webhook_that_fails_does_not_stop_the_run(tmp_path, monkeypatch):
    """An unreachable digest webhook stopped `revintel run` at its digest step: nothing after it ran or was
    published. The step now writes the files, says what failed and succeeds."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _digest_run(tmp_path, monkeypatch, f"http://127.0.0.1:{port}/services/secretToken")
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert "could not be reached" in meta["webhook_error"].value and "secretToken" not in meta["webhook_error"].value
    assert (tmp_path / "data" / "digests" / str(A) / "Mia_Park.md").exists()


def test_the_digest_does_not_list_score_drops_a_new_model_made_as_new_risks():
    """An audit: the week the first model replaced the stage baseline, 11 of a rep's 14 "new risks"
    were drops of the model's making ("(model changed: ...)")."""
    import datetime as dt

    import polars as pl

    from revintel_assets.defs.pipeline.digest import manager_digest

    alerts = pl.DataFrame({"opportunity_id": ["o1", "o2", "o3"], "rep_id": ["Ann"] * 3,
                           "alert_type": ["score_dropped", "score_dropped", "stalled"],
                           "detail": ["win probability 94% -> 74% since 2025-12-29 (model changed: a -> b)",
                                      "win probability 60% -> 40% since 2025-12-29 (model changed: a -> b)",
                                      "2.5x the usual time in Engaging (40 days)"]})
    changes = pl.DataFrame(schema={"rep_id": pl.Utf8, "opportunity_id": pl.Utf8, "category": pl.Utf8,
                                   "amount_before": pl.Float64, "amount_after": pl.Float64,
                                   "expected_close_before": pl.Date, "expected_close_after": pl.Date})
    md = manager_digest("Max", dt.date(2025, 12, 31), dt.date(2025, 12, 29), changes, alerts, "http://app")
    risks = md[md.index("**New risks**"):md.index("**Slipped deals**")]
    assert "o3" in risks and "o1" not in risks and "o2" not in risks
    assert "(and 2 score drops that came with a change of model, not listed" in risks
    only = manager_digest("Max", dt.date(2025, 12, 31), dt.date(2025, 12, 29), changes, alerts.head(1), "http://app")
    risks = only[only.index("**New risks**"):only.index("**Slipped deals**")]
    assert "- none" not in risks and "- (1 score drop that came with a change of model" in risks


@pytest.mark.parametrize("url", ["hooks.example/services/T1/B2/secretToken", "http://127.0.0.1:99999/secretToken",
                                 "http://[::1/secretToken", "ftp://example/secretToken"])
def test_a_webhook_url_that_cannot_be_used_is_a_webhook_failure_without_its_secret(url):
    """A re-check: a URL without its scheme failed the run (ValueError: unknown url type) with the token
    in the message; a port out of range or a broken IPv6 address raised from the redaction itself."""
    from revintel_assets.defs.pipeline.digest import WebhookFailed, post_webhook

    with pytest.raises(WebhookFailed) as e:
        post_webhook(url, "x", timeout=2)
    assert "secretToken" not in str(e.value) and "REVINTEL_DIGEST_WEBHOOK_URL" in str(e.value)
