"""The headline figures of an analyst file, as the README and issue notes quote them.

    python -m benchmarks.report DATA_DIR/warehouse/revintel.duckdb

Every figure is read from validation.model_metrics and the published tables: holdout rows only
where the table says split = 'holdout'.
"""

from __future__ import annotations

import sys

import duckdb
import polars as pl


def q(con, sql: str, params=None) -> pl.DataFrame:
    return con.sql(sql, params=params).pl() if params is None else pl.from_arrow(con.execute(sql, params).arrow())


def report(path: str) -> None:
    con = duckdb.connect(path, read_only=True)
    pl.Config.set_tbl_rows(60)
    pl.Config.set_tbl_width_chars(200)
    pl.Config.set_fmt_str_lengths(60)
    print("== tables")
    print(q(con, "SELECT schema_name || '.' || table_name AS t, estimated_size AS rows FROM duckdb_tables() "
                 "WHERE schema_name NOT IN ('staging') ORDER BY 1"))
    print("== deal model, holdout (family deals)")
    print(q(con, """PIVOT (SELECT cutoff_date, model_name, metric, round(value, 4) AS v FROM validation.model_metrics
                   WHERE model_family = 'deals' AND split = 'holdout'
                     AND metric IN ('auc', 'brier', 'ece', 'n', 'oracle_auc', 'oracle_brier'))
                   ON metric USING first(v) ORDER BY cutoff_date, model_name"""))
    print("== forecast (family forecast, total)")
    print(q(con, """PIVOT (SELECT split, period_type, model_name, metric, round(value, 3) AS v FROM validation.model_metrics
                   WHERE model_family = 'forecast' AND segment_type = 'total'
                     AND metric IN ('coverage_p10_p90', 'coverage_p10_p90_no_swing', 'pinball_p50', 'wape_p50',
                                    'bias', 'n_origins'))
                   ON metric USING first(v) ORDER BY split, period_type, model_name"""))
    print("== outlook (family outlook)")
    print(q(con, """PIVOT (SELECT period_type, model_name, metric, round(value, 4) AS v FROM validation.model_metrics
                   WHERE model_family = 'outlook' AND metric IN ('auc', 'brier', 'ece', 'n'))
                   ON metric USING first(v) ORDER BY period_type, model_name"""))
    print("== ICP holdout, mean over divisions at the holdout cutoff")
    print(q(con, """SELECT model_name, metric, round(avg(value), 4) AS mean, count(*) AS divisions
                   FROM validation.model_metrics WHERE model_family = 'icp' AND split = 'holdout'
                     AND cutoff_date = (SELECT max(cutoff_date) FROM validation.model_metrics
                                        WHERE model_family = 'icp' AND split = 'holdout')
                     AND metric IN ('auc', 'lift_top_decile', 'oracle_auc')
                   GROUP BY ALL ORDER BY metric, model_name"""))
    print("== waterfall, latest as-of date, this quarter, total")
    print(q(con, """SELECT as_of_date, compare_date, category, deals, round(amount) AS amount
                   FROM scores.pipeline_waterfall WHERE segment_type = 'total' AND period = 'this_quarter'
                     AND as_of_date = (SELECT max(as_of_date) FROM scores.pipeline_waterfall
                                       WHERE as_of_date < (SELECT max(as_of_date) FROM scores.pipeline_waterfall))
                   ORDER BY category"""))
    print("== deals scored / alerts at the latest date")
    print(q(con, """SELECT count(*) AS scored, any_value(model_version) AS model,
                   (SELECT count(DISTINCT as_of_date) FROM scores.deal_scores) AS scored_dates
                   FROM scores.deal_scores WHERE as_of_date = (SELECT max(as_of_date) FROM scores.deal_scores)"""))


if __name__ == "__main__":
    report(sys.argv[1])
