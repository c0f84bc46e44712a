"""Small star schemas in DuckDB for the ICP tests: a seeded random company (with CRM) and helpers."""

from __future__ import annotations

import datetime as dt

import duckdb

DIVISIONS = ["Analytics", "Hardware", "Services"]


def random_star(con: duckdb.DuckDBPyConnection, n_accounts: int = 300, seed: int = 7) -> None:
    """Two years of orders (several per day now and then), returns, reps and opportunities."""
    con.execute(f"SELECT setseed({seed / 100})")
    con.execute("CREATE SCHEMA IF NOT EXISTS star")
    con.execute(f"""CREATE OR REPLACE TABLE star.dim_account AS
        SELECT 'A' || lpad(i::VARCHAR, 4, '0') AS account_id, 'Acct ' || i AS account_name,
               ['retail', 'medical', 'software'][1 + i % 3] AS sector, 10 + (i * 37) % 900 AS employees,
               1e6 * (1 + i % 17) AS annual_revenue, ['US', 'DE'][1 + i % 2] AS country,
               CASE WHEN i % 10 = 0 THEN 'A' || lpad((i - 1)::VARCHAR, 4, '0') END AS parent_account_id,
               1990 + i % 30 AS year_established, false AS is_stub
        FROM range(1, {n_accounts + 1}) r(i)""")
    con.execute("""CREATE OR REPLACE TABLE star.dim_product AS
        SELECT d || '-' || k AS product_id, d || ' ' || k AS product_name, d AS series, d AS division,
               100.0 * k AS list_price, false AS is_stub, true AS sellable
        FROM unnest(['Analytics', 'Hardware', 'Services']) t(d), range(1, 4) r(k)""")
    con.execute("""CREATE OR REPLACE TABLE star.dim_rep AS
        SELECT 'R' || i AS rep_id, 'Rep ' || i AS rep_name, 'M' || (i % 2) AS manager,
               ['East', 'West'][1 + i % 2] AS region, false AS is_stub FROM range(1, 6) r(i)""")
    con.execute("""CREATE OR REPLACE TABLE star.fact_transactions AS
        WITH orders AS (
            SELECT a.account_id, DATE '2023-01-01' + (random() * 730)::INT AS order_date,
                   ['Analytics', 'Hardware', 'Services'][1 + (random() * 2.99)::INT] AS division,
                   'R' || (1 + hash(a.account_id) % 5) AS rep_id
            FROM star.dim_account a, range(0, 40) r(j)
            WHERE random() < 0.08 + 0.3 * ((hash(a.account_id) % 100) / 100.0)),
        lines AS (SELECT o.*, k FROM orders o, range(1, 3) r(k) WHERE k = 1 OR random() < 0.5)
        SELECT account_id, order_date, division || '-' || k AS product_id, division,
               (1 + random() * 5)::INT::DOUBLE AS quantity,
               CASE WHEN random() < 0.03 THEN -50.0 ELSE round(20 + random() * 500, 2) END AS amount,
               'sales_log' AS source, rep_id, date_trunc('month', order_date)::DATE AS month_start
        FROM lines""")
    con.execute("""CREATE OR REPLACE TABLE star.fact_opportunity AS
        SELECT 'O' || row_number() OVER () AS opportunity_id, a.account_id, 'R' || (1 + i % 5) AS rep_id,
               d || '-1' AS product_id, d AS division, NULL AS stage,
               DATE '2023-02-01' + ((hash(a.account_id || i) % 650))::INT AS created_date,
               NULL::DATE AS engage_date, NULL::DATE AS expected_close_date, 1000.0 AS amount,
               (hash(a.account_id || i) % 3) AS fate
        FROM star.dim_account a, range(0, 2) r(i),
             (SELECT ['Analytics', 'Hardware', 'Services'][1 + (hash(account_id) % 3)::INT] AS d, account_id
              FROM star.dim_account) x
        WHERE x.account_id = a.account_id AND hash(a.account_id || i) % 4 = 0""")
    # outcomes: a third stay open, the rest close 30-200 days after creation, won or lost
    con.execute("""CREATE OR REPLACE TABLE star.fact_opportunity AS
        SELECT * EXCLUDE (fate, stage, close_date),
               CASE fate WHEN 0 THEN 'Engaging' WHEN 1 THEN 'Won' ELSE 'Lost' END AS stage,
               CASE WHEN fate > 0 THEN created_date + 30 + (hash(opportunity_id) % 170)::INT END AS close_date,
               fate > 0 AS is_closed, fate = 1 AS is_won
        FROM (SELECT *, NULL::DATE AS close_date FROM star.fact_opportunity)""")


def travel_back(con: duckdb.DuckDBPyConnection, cutoff: dt.date) -> None:
    """The world as it stood on `cutoff`: delete every source row dated after it; deals closed
    later were still open then."""
    c = f"DATE '{cutoff.isoformat()}'"
    con.execute(f"DELETE FROM star.fact_transactions WHERE order_date > {c}")
    con.execute(f"DELETE FROM star.fact_opportunity WHERE created_date > {c}")
    con.execute(f"""UPDATE star.fact_opportunity SET close_date = NULL, is_closed = false, is_won = false,
                    stage = 'Engaging' WHERE close_date > {c}""")
