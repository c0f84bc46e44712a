"""SQL snippets that turn exported text into typed values; NULL means "could not parse"."""

from __future__ import annotations

from dataclasses import dataclass, field

from revintel_assets.defs.ingest.expr import quote_ident

# ISO first; then the layouts spreadsheets and CRMs commonly write. Day-first layouts are
# ambiguous against month-first ones, so they only come in through a mapping file.
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d", "%m/%d/%Y",
                "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M"]
# Dates before this, or more than FUTURE_YEARS past the export, are impossible in a sales export.
EARLIEST = "1990-01-01"
FUTURE_YEARS = 5

# Division labels that are not divisions (issue 13): order lines whose SKU the SKU map does not
# name, and deals whose product is unknown. Kept in the star schema (division is NULL-free) with
# star.dim_product.sellable = false: never modelled, never recommended as whitespace.
UNMAPPED = "Unmapped SKUs"
UNASSIGNED = "Unassigned"
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


def date_expr(expr: str, formats: list[str] | None = None) -> str:
    """A date from text: the given formats, then the built-in ones; ISO timestamps with
    fractions or zones ('2024-01-15T10:22:33.000Z', Salesforce) by their date part.

    Fast path, same value as date_full_expr: empty cells and plain YYYY-MM-DD (what the first
    built-in format reads) skip the eight-format parse. Not with the user's formats: they come
    first and may read YYYY-MM-DD otherwise."""
    full = date_full_expr(expr, formats)
    if formats:
        return full
    return (f"(CASE WHEN {expr} IS NULL THEN NULL::DATE WHEN regexp_full_match({expr}, '{_ISO_DATE}') "
            f"AND try_cast({expr} AS DATE) IS NOT NULL THEN try_cast({expr} AS DATE) ELSE {full} END)")


def date_full_expr(expr: str, formats: list[str] | None = None) -> str:
    """date_expr without its fast path."""
    fmts = ", ".join(lit(f) for f in dict.fromkeys([*(formats or []), *DATE_FORMATS]))
    t = f"trim({expr})"
    return (f"coalesce(try_strptime({t}, [{fmts}])::DATE, CASE WHEN regexp_matches({t}, "
            f"'^\\d{{4}}-\\d{{2}}-\\d{{2}}[T ]\\d{{2}}:\\d{{2}}') THEN try_strptime(left({t}, 10), '%Y-%m-%d')::DATE END)")


def date_sql(name: str, formats: list[str] | None = None) -> str:
    return date_expr(col(name), formats)


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


def money_full_expr(expr: str, decimal: str = ".") -> str:
    """money_expr without its fast path: every value through the general rules."""
    t = f"trim({expr})"
    # drop currency codes / words, symbols, spaces (incl. no-break), apostrophes (Swiss 1'000)
    core = (f"regexp_replace(regexp_replace({t}, '[A-Za-z]{{2,}}\\.?', '', 'g'), "
            f"'[\\s\\x{{00a0}}\\x{{202f}}''’$€£¥₹₽¢()]', '', 'g')")
    sign = (f"CASE WHEN regexp_matches({t}, '^[^0-9]*\\(.*\\)[^0-9]*$') OR regexp_matches({core}, '^-|-$') "
            "THEN -1 ELSE 1 END")
    digits = f"trim({core}, '+-')"
    if decimal == ",":
        grouped, plain = r"^(\d{1,3}(\.\d{3})+|\d+)?(,\d+)?$", r"^\d+(,\d+)?([eE][+-]?\d+)?$"
        number = f"replace(replace({digits}, '.', ''), ',', '.')"
    else:
        grouped, plain = r"^(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$", r"^\d*\.?\d+([eE][+-]?\d+)?$"
        number = f"replace({digits}, ',', '')"
    ok = (f"(regexp_matches({digits}, '\\d') AND (regexp_matches({digits}, '{grouped}') "
          f"OR regexp_matches({digits}, '{plain}')))")
    return f"(CASE WHEN {ok} THEN {sign} * try_cast({number} AS DOUBLE) END)"


def money_sql(name: str, decimal: str = ".") -> str:
    return money_expr(col(name), decimal)


def bad_date(name: str, formats: list[str] | None = None) -> str:
    """Present but not a date (an empty cell is decided without parsing it)."""
    return f"(CASE WHEN {col(name)} IS NULL THEN false ELSE NOT {blank(name)} AND {date_sql(name, formats)} IS NULL END)"


def bad_money(name: str, decimal: str = ".") -> str:
    return f"(CASE WHEN {col(name)} IS NULL THEN false ELSE NOT {blank(name)} AND {money_sql(name, decimal)} IS NULL END)"


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


def key_sql(expr: str) -> str:
    """Matching key for names spelt differently across files ('GTXPro' vs 'GTX Pro')."""
    return f"lower(regexp_replace({expr}, '[^A-Za-z0-9]', '', 'g'))"


@dataclass
class Dialect:
    """How one source writes dates, money and stages (from its mapping file)."""
    date_formats: list[str] = field(default_factory=list)
    decimal: str = "."
    stages: dict[str, str] = field(default_factory=dict)

    def date(self, name: str) -> str:
        return date_sql(name, self.date_formats)

    def money(self, name: str) -> str:
        return money_sql(name, self.decimal)

    def bad_date(self, name: str) -> str:
        return bad_date(name, self.date_formats)

    def bad_money(self, name: str) -> str:
        return bad_money(name, self.decimal)

    def stage(self, name: str) -> str:
        return stage_sql(name, self.stages)

    def impossible_date(self, name: str, latest: str | None) -> str:
        """Parsed, but before 1990 or more than FUTURE_YEARS past the export (`latest`)."""
        d = self.date(name)
        hi = f" OR {d} > DATE {lit(latest)} + INTERVAL {FUTURE_YEARS} YEAR" if latest else ""
        return f"({d} < DATE '{EARLIEST}'{hi})"
