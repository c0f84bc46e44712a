"""SQL snippets that turn exported text into typed values; NULL means "could not parse"."""

from __future__ import annotations

from dataclasses import dataclass, field

from revintel_assets.defs.ingest.expr import quote_ident
from revintel_assets.rules import UNASSIGNED

# ISO first; then the layouts spreadsheets and CRMs commonly write. Slashed day-first layouts are
# ambiguous against month-first ones: they come in when a file's own dates prove them
# (settle_day_month, DAY_FIRST) or through a mapping file.
# A two-digit year ('3/29/23', Excel's US short date) is tried before the four-digit one, which
# reads it as the year 23 (then quarantined as impossible); a four-digit year never reads as %y.
# A dotted date ('29.03.2023', German and most of Europe) is day-first wherever it is written.
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d", "%m/%d/%y", "%m/%d/%Y",
                "%m/%d/%y %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M",
                "%d.%m.%y", "%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S"]
# A file writes its dates one way: '01/12/2010' is 1 December in a UK export and 12 January in a
# US one. Trying formats row by row would read a UK file's days up to 12 month-first and the rest
# day-first, silently. So the order is settled per file from its own dates (settle_day_month): a
# first number above 12 proves day-first, a second one above 12 month-first; the majority wins,
# the other order's formats are dropped (the other rows go to the quarantine as not a date).
DAY_FIRST = ["%d/%m/%y", "%d/%m/%Y", "%d/%m/%y %H:%M", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %I:%M %p"]
# Excel writes a date cell formatted as a number as its serial day (days since 1899-12-30): five
# digits for 1970-2099, read as that day in a date column.
EXCEL_SERIALS = (25569, 73050)
# Dates before this, or more than FUTURE_YEARS past the export, are impossible in a sales export.
EARLIEST = "1990-01-01"
FUTURE_YEARS = 5

# Division labels that are not divisions (issue 13): order lines whose SKU the SKU map does not
# name, and deals whose product is unknown. Kept in the star schema (division is NULL-free) with
# star.dim_product.sellable = false: never modelled, never recommended as whitespace.
UNMAPPED = "Unmapped SKUs"
# A tidy log with no SKU map at all: one division for the whole catalogue.
NO_SKU_MAP = "All products"
NOT_SELLABLE = (UNMAPPED, UNASSIGNED)

STAGES = ["Prospecting", "Engaging", "Proposal", "Negotiation", "Won", "Lost"]
CLOSED = ("Won", "Lost")
# Stage names as MavenTech, Salesforce and common CRMs write them (compared lower-cased).
STAGE_ALIASES = {
    # Salesforce standard picklist and common variants; HubSpot's default deal pipeline labels
    # (appointmentscheduled, qualifiedtobuy, ... are the internal names HubSpot exports by API)
    **dict.fromkeys(["prospecting", "prospect", "qualification", "qualify", "qualifying", "lead", "new",
                     "appointment scheduled", "appointmentscheduled", "open", "initial contact"], "Prospecting"),
    **dict.fromkeys(["engaging", "engaged", "discovery", "in_progress", "in progress", "in-progress",
                     "needs analysis", "value proposition", "id. decision makers", "id decision makers",
                     "identify decision makers", "perception analysis", "demo", "solution", "qualified",
                     "qualified to buy", "qualifiedtobuy", "presentation scheduled", "presentationscheduled",
                     "evaluation", "develop", "solution design"], "Engaging"),
    **dict.fromkeys(["proposal", "proposal/price quote", "proposal/quote", "proposal / quote", "price quote",
                     "quote", "quoted", "proposal sent", "propose", "decision maker bought-in",
                     "decision maker bought in", "decisionmakerboughtin"], "Proposal"),
    **dict.fromkeys(["negotiation", "negotiation/review", "negotiate", "negotiating", "commit", "contract",
                     "contract sent", "contractsent", "verbal commit", "closing"], "Negotiation"),
    **dict.fromkeys(["won", "closed won", "closed/won", "closed - won", "closedwon", "closed-won",
                     "closed_won", "win"], "Won"),
    **dict.fromkeys(["lost", "closed lost", "closed/lost", "closed - lost", "closedlost", "closed-lost",
                     "closed_lost", "closed no decision", "no decision", "disqualified"], "Lost"),
}
# Salesforce forecast categories (labels and API values) -> the five star.fact_opportunity keeps
FORECAST_CATEGORIES = {"commit": "Commit", "best case": "Best Case", "bestcase": "Best Case",
                       "pipeline": "Pipeline", "omitted": "Omitted", "closed": "Closed",
                       "forecast": "Commit", "most likely": "Best Case", "mostlikely": "Best Case",
                       # HubSpot's forecast category labels
                       "not forecasted": "Omitted", "closed won": "Closed", "closed lost": "Omitted"}


def forecast_category_expr(expr: str) -> str:
    whens = " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in FORECAST_CATEGORIES.items())
    return f"(CASE lower(trim({expr})) {whens} END)"


def col(name: str) -> str:
    return quote_ident(name)


def lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def blank(name: str) -> str:
    """TRUE when the field is missing or only whitespace."""
    return f"(nullif(trim({col(name)}), '') IS NULL)"


_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_PLAIN_NUMBER = r"-?\d+(\.\d+)?"
_PLAIN_INTEGER = r"-?\d+"


def date_expr(expr: str, formats: list[str] | None = None, exclude: tuple[str, ...] = ()) -> str:
    """A date from text: the given formats, then the built-in ones (minus `exclude`); ISO
    timestamps with fractions or zones ('2024-01-15T10:22:33.000Z', Salesforce) by their date
    part; an Excel serial day (EXCEL_SERIALS).

    Fast path, same value as date_full_expr: empty cells and plain YYYY-MM-DD (what the first
    built-in format reads) skip the eight-format parse. Not with the user's formats: they come
    first and may read YYYY-MM-DD otherwise."""
    full = date_full_expr(expr, formats, exclude)
    if formats:
        return full
    return (f"(CASE WHEN {expr} IS NULL THEN NULL::DATE WHEN regexp_full_match({expr}, '{_ISO_DATE}') "
            f"AND try_cast({expr} AS DATE) IS NOT NULL THEN try_cast({expr} AS DATE) ELSE {full} END)")


def date_full_expr(expr: str, formats: list[str] | None = None, exclude: tuple[str, ...] = ()) -> str:
    """date_expr without its fast path."""
    fmts = ", ".join(lit(f) for f in dict.fromkeys([*(formats or []), *DATE_FORMATS]) if f not in exclude)
    t = f"trim({expr})"
    lo, hi = EXCEL_SERIALS
    return (f"coalesce(try_strptime({t}, [{fmts}])::DATE, CASE WHEN regexp_matches({t}, "
            f"'^\\d{{4}}-\\d{{2}}-\\d{{2}}[T ]\\d{{2}}:\\d{{2}}') THEN try_strptime(left({t}, 10), '%Y-%m-%d')::DATE "
            f"WHEN regexp_full_match({t}, '\\d{{5}}(\\.\\d+)?') AND try_cast({t} AS DOUBLE) BETWEEN {lo} AND {hi} "
            f"THEN DATE '1899-12-30' + floor(try_cast({t} AS DOUBLE))::INTEGER END)")


def date_sql(name: str, formats: list[str] | None = None, exclude: tuple[str, ...] = ()) -> str:
    return date_expr(col(name), formats, exclude)


def _day_month(fmt: str) -> str | None:
    """'day' for a day-first format ('%d/%m/%Y'), 'month' for a month-first one, else None."""
    if fmt.startswith("%Y") or "%d" not in fmt or "%m" not in fmt:
        return None
    return "day" if fmt.index("%d") < fmt.index("%m") else "month"


def settle_day_month(con, table: str, exprs: list[str], formats: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """(formats, built-in formats to leave out) for one file whose date cells are the text
    expressions `exprs` over `table`: day-first when more of its dates can only be day-first than
    can only be month-first (DAY_FIRST joins the formats, the month-first ones leave), month-first
    in the opposite case (day-first formats leave), the formats as given when nothing tells."""
    if not exprs:
        return formats, ()
    cells = " UNION ALL ".join(f"SELECT trim(({e})::VARCHAR) AS v FROM {table}" for e in exprs)
    pattern = "'^(\\d{1,2})[/.-](\\d{1,2})[/.-]\\d{2,4}'"
    day_only, month_only = con.execute(f"""
        SELECT count(*) FILTER (WHERE a > 12 AND b BETWEEN 1 AND 12), count(*) FILTER (WHERE b > 12 AND a BETWEEN 1 AND 12)
        FROM (SELECT try_cast(regexp_extract(v, {pattern}, 1) AS INTEGER) AS a,
                     try_cast(regexp_extract(v, {pattern}, 2) AS INTEGER) AS b
              FROM ({cells})
              -- ISO dates (the usual export) skip the regular expression: their 3rd character is a digit
              WHERE substr(v, 2, 1) IN ('/', '.', '-') OR substr(v, 3, 1) IN ('/', '.', '-'))""").fetchall()[0]
    if day_only > month_only:
        kept = [f for f in formats if _day_month(f) != "month"]
        return [*kept, *(f for f in DAY_FIRST if f not in kept)], tuple(f for f in DATE_FORMATS if _day_month(f) == "month")
    if month_only > day_only:
        return [f for f in formats if _day_month(f) != "day"], ()
    return formats, ()


# The raw tables of this import read from a workbook (raw_csv._load_excel marks them). A workbook's
# number cells come as plain text ('1.125', '14904'): they never group thousands, so there a cell like
# '1.125' is no vote for a decimal comma (an audit: unit prices of three decimals read 1,000 times too
# large). Cells that can only be read with a decimal comma ('1.234,56') or only as grouped text
# ('2.350', '1.000.000') still vote (settle_decimal).
WORKBOOK_TABLES = "temp._revintel_workbook_tables"


def mark_workbook(con, table: str, workbook: bool) -> None:
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {WORKBOOK_TABLES} (name VARCHAR)")
    con.execute(f"DELETE FROM {WORKBOOK_TABLES} WHERE name = ?", [table])
    if workbook:
        con.execute(f"INSERT INTO {WORKBOOK_TABLES} VALUES (?)", [table])


def from_workbook(con, table: str) -> bool:
    """`table` (a raw table, or a query reading one) was read from a workbook."""
    if not con.execute(f"SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = "
                       f"'{WORKBOOK_TABLES.split('.')[-1]}'").fetchall()[0][0]:
        return False
    return any(name in table for (name,) in con.execute(f"SELECT name FROM {WORKBOOK_TABLES}").fetchall())


def settle_decimal(con, table: str, exprs: list[str], decimal: str = ".") -> str:
    """The decimal separator of one file's amount cells (the text expressions `exprs` over
    `table`), settled like the day / month order: ',' when more cells can only be read with a
    decimal comma ('1.234,56', '14904,50') than with a decimal point ('1,234.56', '14904.5'); with
    neither, ',' when more cells group thousands with dots ('14.904', a German export's whole
    amounts, read as 14.904 before) than with commas (in a workbook, only cells no number cell could
    be: WORKBOOK_TABLES); else `decimal` (a mapping's `decimal:` always wins)."""
    if not exprs:
        return decimal
    # a number in scientific notation votes only for the separator of its mantissa ('1.5E+05',
    # '1.235E+05': a point; '1,5E+05': a comma), never for groups of thousands: reduced to its digits
    # it read '1.505', dot-grouped thousands, and turned a whole file to decimal comma
    sci = "'^[-+]?[0-9]+{}[0-9]+[eE][-+]?[0-9]+$'"
    cells = " UNION ALL ".join(
        f"SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(trim(({e})::VARCHAR), {sci.format('[.]')}, '0.5'), "
        f"{sci.format(',')}, '0,5'), '^[-+]?[0-9]+[eE][-+]?[0-9]+$', ''), '[^0-9.,]', '', 'g') AS v FROM {table}" for e in exprs)
    # a separator "can only be" the decimal one when the cell cannot be read as groups of three:
    # 1-2 digits after it, 4+ digits before it ('1054.000'), 4+ after it, groups of the other kind
    # before it, or a lone 0 before it ('0.850': no grouping of thousands starts with a 0; a price
    # list of three decimals was read as 850, 1,000 times too large)
    # in a workbook a number cell reads '1.125' (no grouping): only a cell no number cell could be, two
    # groups or a last group ending in 0 ('1.000.000', '2.350': calamine drops trailing zeros), is text
    # grouping thousands (a re-check: text cells '2.350', '12.000' were read 1,000 times too small)
    comma, point, dot_groups, comma_groups, dot_text = con.execute(rf"""
        SELECT count(*) FILTER (WHERE regexp_full_match(v, '(\d{{1,3}}(\.\d{{3}})+|\d+),\d{{1,2}}')
                                   OR regexp_full_match(v, '\d{{1,3}}(\.\d{{3}})+,\d+')
                                   OR regexp_full_match(v, '\d{{4,}},\d+|\d*,\d{{4,}}|0,\d+')),
               count(*) FILTER (WHERE regexp_full_match(v, '(\d{{1,3}}(,\d{{3}})+|\d*)\.\d{{1,2}}')
                                   OR regexp_full_match(v, '\d{{1,3}}(,\d{{3}})+\.\d+')
                                   OR regexp_full_match(v, '\d{{4,}}\.\d+|\d*\.\d{{4,}}|0\.\d+')),
               count(*) FILTER (WHERE regexp_full_match(v, '[1-9]\d{{0,2}}(\.\d{{3}})+')),
               count(*) FILTER (WHERE regexp_full_match(v, '[1-9]\d{{0,2}}(,\d{{3}})+')),
               count(*) FILTER (WHERE regexp_full_match(v, '[1-9]\d{{0,2}}(\.\d{{3}}){{2,}}|[1-9]\d{{0,2}}\.\d{{2}}0'))
        FROM ({cells}) WHERE v <> ''""").fetchall()[0]
    if comma != point:
        return "," if comma > point else "."
    if from_workbook(con, table):
        dot_groups = dot_text
    if dot_groups != comma_groups:
        return "," if dot_groups > comma_groups else "."
    return decimal


def decimal_flag(con, table: str, d: "Dialect") -> dict[str, int]:
    """{"amounts_read_with_decimal_comma": rows of `table`} when settle_decimal chose ',' for a file
    (no mapping said so): the run says it, never silently."""
    if d.decimal != "," or d.decimal_given:
        return {}
    return {"amounts_read_with_decimal_comma": con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]}


def money_expr(expr: str, decimal: str = ".") -> str:
    """Amounts as exports write them: currency symbols or codes, thousands separators,
    (parenthesised) or trailing-minus negatives. Anything else is NULL, never a guess:
    '1.200,50' read with decimal '.' is not a number (a mapping says `decimal: ","`).

    Fast path, same value as money_full_expr: an empty cell, or a plain number (optional minus,
    digits, a decimal point when it is '.'), skips its five regular expressions; CASE evaluates
    a branch only on the rows that reach it (a wide sales log is mostly empty cells)."""
    fast = _PLAIN_NUMBER if decimal != "," else _PLAIN_INTEGER
    return (f"(CASE WHEN {expr} IS NULL THEN NULL::DOUBLE WHEN regexp_full_match({expr}, '{fast}') "
            f"THEN try_cast({expr} AS DOUBLE) ELSE {money_full_expr(expr, decimal)} END)")


# Currency words and marks an amount may carry beside its symbol or code (any case), and the currency
# each names ("kr", "Rs": several currencies, named as written). Declared once: the amount parser
# drops them, amount_currencies names them (a re-check: 'zł 1 234' read as a bare number was summed
# with the file's other currency without a word).
CURRENCY_WORDS = {
    **{c.lower(): c for c in ("USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN",
                              "CZK", "HUF", "INR", "BRL", "MXN", "ZAR", "CNY", "HKD", "SGD")},
    "us": "USD", "us$": "USD", "c$": "CAD", "ca$": "CAD", "a$": "AUD", "au$": "AUD", "nz$": "NZD", "hk$": "HKD",
    "s$": "SGD", "r$": "BRL", "mx$": "MXN", "nt$": "TWD", "dollar": "$", "dollars": "$", "euro": "EUR", "euros": "EUR",
    "pound": "GBP", "pounds": "GBP", "yen": "JPY", "sfr": "CHF", "fr": "CHF", "franc": "CHF", "francs": "CHF",
    "kr": "kr", "krona": "kr", "kronor": "kr", "krone": "kr", "kroner": "kr", "rs": "Rs", "rupee": "Rs",
    "rupees": "Rs", "rp": "IDR", "ft": "HUF", "zł": "PLN", "zl": "PLN", "zloty": "PLN", "kč": "CZK", "lei": "RON",
    "tl": "TRY", "lira": "TRY", "rm": "MYR", "ringgit": "MYR", "ksh": "KES", "rand": "ZAR", "reais": "BRL",
}
# longest first: RE2 takes the first alternative that matches ('fr' before 'francs' left 'ancs')
_WORDS = "|".join(w.replace("$", "\\$") for w in sorted(CURRENCY_WORDS, key=lambda w: (-len(w), w)))
# What may stand before or after an amount's digits: spaces, currency symbols, a sign, parentheses and a
# currency word (a three-letter code in capitals, or one of CURRENCY_WORDS). Anywhere else, or any other
# word, the cell is not an amount: '12abc', '2500 pending' and '12 34' were read as 12, 2500 and 1234
# (an audit).
_CURRENCY_WORD = rf"(?:(?i:{_WORDS})|[A-Z]{{3}})\.?"  # the words first: 'EURO' is not 'EUR' and an 'O'
_AFFIX = rf"(?:[\s\x{{00a0}}\x{{202f}}$€£¥₹₽¢()+-]|{_CURRENCY_WORD})*"


# Excel's Accounting format writes a zero as a dash, and a CSV saved from it keeps the cell as shown:
# ' $ -   ', ' € - ', ' -   ' (padded by the format). A currency mark beside the dash, or the format's
# padding around it, is a zero; a bare '-' stays no amount (exports write it for "none"). An audit:
# 15 of 24 lost deals of such a list were quarantined, and the win model saw 26 won against 9 lost.
_MARK = "([$€£¥₹₽]|[A-Z]{3})"
ACCOUNTING_ZERO = rf"\s*{_MARK}\s*-\s*|\s*-\s*{_MARK}\s*|\s+-\s+"


def money_full_expr(expr: str, decimal: str = ".") -> str:
    """money_expr without its fast path: every value through the general rules."""
    t = f"trim({expr})"
    # the digits with their separators: affixes dropped from both ends; a space (or no-break space)
    # or an apostrophe between digits (1 200, Swiss 1'000) is a thousands separator, so it must
    # group by three like the others
    group = "," if decimal != "," else "."
    raw = f"regexp_replace(regexp_replace({t}, '^{_AFFIX}', ''), '{_AFFIX}$', '')"
    spaces = "'[ \\x{00a0}\\x{202f}''’]'"
    core = f"regexp_replace({raw}, {spaces}, '{group}', 'g')"
    # one kind of thousands separator per number: '1,234 567' is no amount (it read as 1,234,567)
    mixed = f"(regexp_matches({raw}, {spaces}) AND strpos({raw}, '{group}') > 0)"
    sign = (f"CASE WHEN regexp_matches({t}, '^[^0-9]*\\(.*\\)[^0-9]*$') OR regexp_matches({t}, '^[^0-9]*-|-[^0-9]*$') "
            "THEN -1 ELSE 1 END")
    if decimal == ",":
        grouped, plain = r"^(\d{1,3}(\.\d{3})+|\d+)?(,\d+)?$", r"^\d+(,\d+)?([eE][+-]?\d+)?$"
        number = f"replace(replace({core}, '.', ''), ',', '.')"
    else:
        grouped, plain = r"^(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$", r"^\d*\.?\d+([eE][+-]?\d+)?$"
        number = f"replace({core}, ',', '')"
    ok = (f"(regexp_matches({core}, '\\d') AND NOT {mixed} AND (regexp_matches({core}, '{grouped}') "
          f"OR regexp_matches({core}, '{plain}')))")
    # isfinite: '1e400' read as infinity
    return (f"(CASE WHEN {ok} AND isfinite(try_cast({number} AS DOUBLE)) THEN {sign} * try_cast({number} AS DOUBLE) "
            f"WHEN regexp_full_match({expr}, '{ACCOUNTING_ZERO}') THEN 0.0 END)")


# The currency an amount cell names ("EUR 1,200.00", "£22,640.00", "1.200,50 €"): money_expr drops
# the mark to read the number, so without this a report in pounds read as the default currency and
# a report mixing dollars and euros was summed without a word. "$" is any dollar: it names no
# currency on its own, but tells a mix apart.
CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₽": "RUB", "$": "$"}
ANY_DOLLAR = "$"
# currencies written with "$": beside one of them, "$" is that one (a report writing "USD 1,200"
# in some cells and "$1,200" in others is in one currency)
DOLLARS = {"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN", "TWD"}
_NOT_A_BARE_NUMBER = r"[^0-9.,\s()'+-]"  # a cell with any other character


def amount_currencies(con, table: str, name: str, decimal: str = ".") -> dict[str, int]:
    """{currency: amount cells} over the cells of column `name` that read as an amount and carry a
    currency mark: a three-letter code in capitals, else a symbol (CURRENCY_SYMBOLS). Most exports
    write bare numbers: one character class per cell finds the few that are not (0.1 s for the
    2 M close values of scale 100)."""
    symbol = "CASE regexp_extract(v, '[€£¥₹₽$]') " + " ".join(
        f"WHEN {lit(k)} THEN {lit(v)}" for k, v in CURRENCY_SYMBOLS.items()) + " END"
    code = r"'(^|[^A-Za-z])([A-Z]{3})([^A-Za-z]|$)'"
    word = f"'(?i)(^|[^a-zł])({_WORDS})([^a-zł]|$)'"  # CURRENCY_WORDS, any case ('zł 1 234', '1,234 dollars')
    named = "CASE lower(regexp_extract(v, " + word + ", 2)) " + " ".join(
        f"WHEN {lit(k)} THEN {lit(v)}" for k, v in CURRENCY_WORDS.items()) + " END"
    marked = f"{table} WHERE regexp_matches({col(name)}, {lit(_NOT_A_BARE_NUMBER)})"
    # MATERIALIZED: a fence, or the optimizer runs the extractions on every cell before the filter
    rows = con.execute(f"""WITH cells AS MATERIALIZED (SELECT trim({col(name)}) AS v FROM {marked})
        SELECT c, count(*) FROM (SELECT coalesce(nullif(regexp_extract(v, {code}, 2), ''), {named}, {symbol}) AS c
                                 FROM cells WHERE {money_full_expr('v', decimal)} IS NOT NULL)
        WHERE c IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall()
    marks = dict(rows)
    codes = set(marks) - {ANY_DOLLAR}
    if ANY_DOLLAR in marks and len(codes) == 1 and codes <= DOLLARS:
        (code,) = codes
        marks = {code: marks[code] + marks[ANY_DOLLAR]}
    return marks


def currency_report(con, table: str, name: str, decimal: str = ".") -> dict:
    """A file report's {"currencies": ...} from the marks in its amount column, {} when none."""
    marks = amount_currencies(con, table, name, decimal)
    return {"currencies": marks} if marks else {}


def money_sql(name: str, decimal: str = ".") -> str:
    return money_expr(col(name), decimal)


def bad_date(name: str, formats: list[str] | None = None, exclude: tuple[str, ...] = ()) -> str:
    """Present but not a date (an empty cell is decided without parsing it)."""
    return (f"(CASE WHEN {col(name)} IS NULL THEN false ELSE NOT {blank(name)} AND "
            f"{date_sql(name, formats, exclude)} IS NULL END)")


def bad_money(name: str, decimal: str = ".") -> str:
    """A cell that holds something but no amount. A bare '-' is no amount and nothing bad: an empty
    amount, as exports write "none" (a re-check: lost deals with '-' were quarantined, skewing the
    win rate, while the same deals with an empty cell were kept)."""
    return (f"(CASE WHEN {col(name)} IS NULL THEN false ELSE NOT {blank(name)} AND trim({col(name)}) <> '-' "
            f"AND {money_sql(name, decimal)} IS NULL END)")


def stage_expr(expr: str, extra: dict[str, str] | None = None) -> str:
    """Canonical stage name; NULL for a stage revintel does not know (a mapping can teach it)."""
    aliases = {**STAGE_ALIASES, **{k.strip().lower(): v for k, v in (extra or {}).items()}}
    whens = " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in aliases.items())
    # Fast path, same value: a stage written exactly as revintel names it (what most rows hold)
    # skips the ~100 comparisons of the alias CASE, unless a mapping reassigns that spelling.
    own = [s for s in STAGES if aliases.get(s.lower()) == s]
    if not own:
        return f"(CASE lower(trim({expr})) {whens} END)"
    return f"(CASE WHEN {expr} IN ({', '.join(lit(s) for s in own)}) THEN {expr} ELSE (CASE lower(trim({expr})) {whens} END) END)"


def stage_sql(name: str, extra: dict[str, str] | None = None) -> str:
    return stage_expr(col(name), extra)


def bool_expr(expr: str) -> str:
    """Salesforce-style booleans: true/false, 1/0, yes/no; NULL when blank or anything else."""
    return (f"(CASE lower(trim({expr})) WHEN 'true' THEN true WHEN '1' THEN true WHEN 'yes' THEN true "
            f"WHEN 't' THEN true WHEN 'y' THEN true WHEN 'false' THEN false WHEN '0' THEN false "
            f"WHEN 'no' THEN false WHEN 'f' THEN false WHEN 'n' THEN false END)")


def id_sql(expr: str) -> str:
    """An id as text, trimmed; a whole number written as a float by pandas or Excel (Online Retail
    II's CSVs: 13085.0) is that number, the same customer as 13085 in another file."""
    t = f"trim({expr})"
    return f"(CASE WHEN {t} LIKE '%.0' THEN regexp_replace({t}, '^([0-9]+)\\.0+$', '\\1') ELSE {t} END)"


def key_sql(expr: str) -> str:
    """Matching key for names spelt differently across files ('GTXPro' vs 'GTX Pro'); NULL only
    for NULL."""
    # letters, marks and digits of any script (a key of A-Z and 0-9 only was '' for every Chinese or
    # Cyrillic name: an audit's six such accounts became two); accents dropped from names written
    # in Latin or Greek letters only ('Müller' is 'Muller', 'Μυτιληναίος' is 'ΜΥΤΙΛΗΝΑΙΟΣ'), kept in
    # other scripts, where a mark makes another name ('サンデン' is not 'サンテン', 'Зайка' not
    # 'Заика'); full-width letters and digits, the final sigma and 'ß' folded ('ＡＣＭＥ' is 'ACME',
    # 'Straße' is 'STRASSE'); a name with none of these keeps itself ('?' matches only '?')
    x = f"translate(nfc_normalize({expr}), {lit(_FULL_WIDTH)}, {lit(_HALF_WIDTH)})"
    x = f"(CASE WHEN regexp_full_match({x}, '[\\x{{0}}-\\x{{24F}}\\x{{370}}-\\x{{3FF}}\\x{{1E00}}-\\x{{1FFF}}]*') THEN strip_accents({x}) ELSE {x} END)"
    x = f"replace(replace(lower({x}), 'ς', 'σ'), 'ß', 'ss')"
    full = f"coalesce(nullif(regexp_replace({x}, '[^\\pL\\pM\\pN]', '', 'g'), ''), {expr})"
    # a name in ASCII (bytes = characters) takes the same key without the Unicode steps: 12x slower
    # for every name measured (20 M names: 2.9 s this way, 36 s through them)
    ascii_key = f"coalesce(nullif(lower(regexp_replace({expr}, '[^A-Za-z0-9]', '', 'g')), ''), {expr})"
    return f"(CASE WHEN strlen({expr}) = length({expr}) THEN {ascii_key} ELSE {full} END)"


_HALF_WIDTH = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in _HALF_WIDTH)  # Ｕ+FF10.. (CJK input's full-width forms)


@dataclass
class Dialect:
    """How one source writes dates, money and stages (from its mapping file)."""
    date_formats: list[str] = field(default_factory=list)
    decimal: str = "."
    stages: dict[str, str] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()  # built-in date formats this file does not use (settle_day_month)
    decimal_given: bool = False  # the mapping file said `decimal:`; else each file's amounts settle it

    def settled(self, con, table: str, names: list[str], money: list[str] | tuple = ()) -> "Dialect":
        """This dialect with the day / month order of the file's date columns `names` settled, and
        its decimal separator from its amount columns `money` unless the mapping gave one."""
        formats, exclude = settle_day_month(con, table, [col(n) for n in names], self.date_formats)
        decimal = self.decimal if self.decimal_given else settle_decimal(con, table, [col(m) for m in money],
                                                                          self.decimal)
        return Dialect(formats, decimal, self.stages, exclude, self.decimal_given)

    def date(self, name: str) -> str:
        return date_sql(name, self.date_formats, self.exclude)

    def money(self, name: str) -> str:
        return money_sql(name, self.decimal)

    def bad_date(self, name: str) -> str:
        return bad_date(name, self.date_formats, self.exclude)

    def bad_money(self, name: str) -> str:
        return bad_money(name, self.decimal)

    def stage(self, name: str) -> str:
        return stage_sql(name, self.stages)

    def impossible_date(self, name: str, latest: str | None) -> str:
        """Parsed, but before 1990 or more than FUTURE_YEARS past the export (`latest`)."""
        d = self.date(name)
        hi = f" OR {d} > DATE {lit(latest)} + INTERVAL {FUTURE_YEARS} YEAR" if latest else ""
        return f"({d} < DATE '{EARLIEST}'{hi})"
