"""The SKU → division map (`sku_map.csv` or `sku_divisions.csv`): data, never code.

SKUs it names that the products file does not are added to staging.products, so every SKU of
a transaction log has a product row with its division (and its description as a name).
"""

from __future__ import annotations

from pathlib import Path

from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.ingest.maventech import file_report
from revintel_assets.defs.ingest.parse_sql import blank, col, lit
from revintel_assets.defs.ingest.quarantine import QUARANTINE_STAGING, Rule, apply_rules
from revintel_assets.defs.ingest.raw_csv import header_delimiter, load_raw_csv

SKU_MAP_FILES = ("sku_map.csv", "sku_divisions.csv", "sku_map.xlsx", "sku_divisions.xlsx")


def load_sku_map(con, folder: Path, delimiter: str = ",") -> dict[str, dict]:
    """The SKU map beside the log; `delimiter`: the mapping file's, used when the map's header
    line holds it (a European export's map is semicolon-separated like its log, or not)."""
    path = next((folder / f for f in SKU_MAP_FILES if (folder / f).exists()), None)
    if path is None:
        return {}
    raw = load_raw_csv(con, path, "temp.raw_sku_map", ["division"], "SKU map",
                       delimiter=header_delimiter(path, delimiter))
    sku = "sku" if "sku" in raw.columns else ("stock_code" if "stock_code" in raw.columns else None)
    if sku is None:
        raise SourceError(path, 1, "a SKU map header 'sku, division'", f"found {', '.join(raw.columns)}")
    caught = apply_rules(con, "temp.raw_sku_map", path.name, raw.columns, [
        Rule("missing_sku", blank(sku), "'sku is empty'"),
        Rule("missing_division", blank("division"), "'division is empty'"),
    ])
    con.execute(f"""CREATE OR REPLACE TABLE staging.sku_map AS
        SELECT trim({col(sku)}) AS sku, arg_min(trim(division), _line) AS division,
               min(_line) AS _line, {lit(path.name)} AS source_file FROM temp.raw_sku_map GROUP BY 1""")
    dup = con.execute("SELECT count(*) FROM temp.raw_sku_map").fetchall()[0][0] - \
        con.execute("SELECT count(*) FROM staging.sku_map").fetchall()[0][0]
    if dup:  # keep the first division per SKU; the later rows are accounted for, not dropped
        con.execute(f"""INSERT INTO {QUARANTINE_STAGING} SELECT {lit(path.name)}, r._line,
            r.{col(sku)} || ',' || r.division, 'sku already mapped on line ' || m._line
            FROM temp.raw_sku_map r JOIN staging.sku_map m ON m.sku = trim(r.{col(sku)})
            WHERE r._line <> m._line""")
        caught["duplicate_sku"] = dup
    name = f"nullif(trim({col('description')}), '')" if "description" in raw.columns else "NULL"
    con.execute(f"""INSERT INTO staging.products (product_id, product_name, division, source_file, _line)
        SELECT m.sku, coalesce(any_value({name}), m.sku), m.division, {lit(path.name)}, m._line
        FROM staging.sku_map m JOIN temp.raw_sku_map r ON r._line = m._line
        WHERE m.sku NOT IN (SELECT product_id FROM staging.products) GROUP BY m.sku, m.division, m._line""")
    return {path.name: file_report(raw, caught)}
