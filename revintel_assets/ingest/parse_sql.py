"""SQL snippets that turn exported text into typed values; NULL means "could not parse"."""

from __future__ import annotations

# ISO first; then the layouts spreadsheets and CRMs commonly write. Day-first layouts are
# ambiguous against month-first ones, so they only come in through a mapping file.
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d", "%m/%d/%Y",
                "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S"]


def col(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def blank(name: str) -> str:
    """TRUE when the field is missing or only whitespace."""
    return f"(nullif(trim({col(name)}), '') IS NULL)"


def date_sql(name: str, formats: list[str] | None = None) -> str:
    fmts = ", ".join("'" + f + "'" for f in (formats or DATE_FORMATS))
    return f"try_strptime(trim({col(name)}), [{fmts}])::DATE"


def money_sql(name: str) -> str:
    """Amounts as exports write them: currency symbols, thousands separators, (negatives)."""
    c = f"trim({col(name)})"
    sign = f"CASE WHEN {c} LIKE '(%)' OR {c} LIKE '-%' THEN -1 ELSE 1 END"
    digits = f"nullif(regexp_replace({c}, '[^0-9.eE]', '', 'g'), '')"
    return f"({sign} * try_cast({digits} AS DOUBLE))"


def bad_date(name: str, formats: list[str] | None = None) -> str:
    """Present but not a date."""
    return f"(NOT {blank(name)} AND {date_sql(name, formats)} IS NULL)"


def bad_money(name: str) -> str:
    return f"(NOT {blank(name)} AND {money_sql(name)} IS NULL)"


def key_sql(expr: str) -> str:
    """Matching key for names spelt differently across files ('GTXPro' vs 'GTX Pro')."""
    return f"lower(regexp_replace({expr}, '[^A-Za-z0-9]', '', 'g'))"
