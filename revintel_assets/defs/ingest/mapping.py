"""The user's mapping file: how a variant export maps onto revintel's names, without code changes.

`revintel_mapping.yaml` in the source folder, or the file given by `revintel run --mapping FILE`
(environment REVINTEL_MAPPING). Every key is optional:

    layout: maventech            # force the layout: maventech | salesforce | sales_log | tidy (a+b for both)
    files:                       # revintel's file name: your file name
      sales_pipeline.csv: deals_2024.csv
    columns:                     # revintel's column: your column, for every file of the layout ...
      engage_date: created_on
      sales_pipeline.csv:        # ... or for one file only
        close_value: amount_eur
    stages:                      # your stage name: Prospecting | Engaging | Proposal | Negotiation | Won | Lost
      In_Progress: Engaging
      Verbal Commit: Negotiation
    date_formats: ["%d.%m.%Y", "%d.%m.%Y %H:%M"]   # tried before the built-in ones (strftime codes)
    decimal: ","                 # decimal separator; the thousands separator is then "." (or a space)
    delimiter: ";"               # field separator, default ","
    encoding: cp1252             # force an encoding: utf-8, utf-16, cp1252 / latin-1 (default: UTF-8, Windows-1252 when the whole file is not UTF-8)
    non_sellable_divisions: [Non-product]   # kept in the star schema, never modelled nor recommended

Tidy transactions may also compute a column from yours (`amount: "Quantity * UnitPrice"`, see
mappings/online_retail.yaml): column names, numbers, + - * / and parentheses, try_cast, abs,
round, coalesce (ingest/expr.py). A mapping describes, it never executes: a value outside that
grammar, or a `files:` entry outside the source folder, stops the run with a SourceError naming
the mapping file and line (docs/SECURITY.md).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

from revintel_assets.defs.ingest import expr
from revintel_assets.defs.ingest.errors import SourceError

USER_MAPPING = "revintel_mapping.yaml"
STAGES = ["Prospecting", "Engaging", "Proposal", "Negotiation", "Won", "Lost"]
KEYS = {"layout", "files", "columns", "stages", "date_formats", "decimal", "delimiter", "encoding",
        "signature", "thousands", "non_sellable_divisions"}


@dataclass
class Mapping:
    path: Path | None = None
    layout: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    columns: dict = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    date_formats: list[str] = field(default_factory=list)
    decimal: str = "."
    decimal_given: bool = False  # `decimal:` in the file (else each file's amounts settle it: parse_sql.settle_decimal)
    delimiter: str = ","
    encoding: str | None = None
    signature: list[str] | None = None
    non_sellable: list[str] = field(default_factory=list)  # divisions never modelled nor recommended
    lines: dict[tuple, int] = field(default_factory=dict)  # ("columns", key) -> line in the file
    read_as: dict[str, str] = field(default_factory=dict)  # file -> how a file was recognised by its header

    def line(self, *keys: str) -> int:
        """The line of a key in the mapping file (0 when unknown)."""
        return self.lines.get(tuple(keys), self.lines.get(tuple(keys[:1]), 0))

    def file(self, canonical: str) -> str:
        return self.files.get(canonical, canonical)

    def columns_for(self, canonical_file: str | None) -> dict[str, str]:
        """revintel column -> user's column, for one file: the flat entries, then the file's own."""
        flat = {k: v for k, v in self.columns.items() if isinstance(v, str)}
        own = self.columns.get(canonical_file) if canonical_file else None
        return {**flat, **(own if isinstance(own, dict) else {})}

    @property
    def origin(self) -> str:
        return str(self.path) if self.path else "the built-in defaults"


def mapping_path(folder: Path, explicit: str | Path | None = None) -> Path | None:
    chosen = explicit
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_absolute() and not path.exists():
            path = Path(folder) / path
        if not path.exists():
            raise SourceError(path, 0, "a mapping file (YAML)", "it does not exist")
        return path
    path = Path(folder) / USER_MAPPING
    if not path.exists():
        return None
    try:  # the folder's own mapping stays inside it: a symlink to a config file had its keys quoted (an audit)
        return inside(folder, USER_MAPPING)
    except ValueError as exc:
        raise SourceError(path, 0, "a mapping file inside the source folder", str(exc)) from None


# A mapping is a few dozen keys. An alias (*name) lets a 1 kB file expand to gigabytes ("a billion
# laughs": nine levels of nine aliases held the run at 2.9 GB until it died, an audit): none is read.
MAX_MAPPING_BYTES = 1_000_000


class _NoAliases(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "an alias (*name): write the value out",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def load_mapping(folder: Path, explicit: str | Path | None = None) -> Mapping:
    path = mapping_path(folder, explicit)
    if path is None:
        return Mapping()
    expected = "a YAML mapping file (see README, 'Bring your own export')"
    if path.stat().st_size > MAX_MAPPING_BYTES:
        raise SourceError(path, 0, expected, f"a file of {path.stat().st_size:,} bytes (at most {MAX_MAPPING_BYTES:,})")
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = yaml.load(text, Loader=_NoAliases) or {}
        lines = key_lines(text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", 0) + 1
        # the kind of problem only: never the text of a file that may not be a mapping at all
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SourceError(path, line, expected, str(problem).splitlines()[0]) from exc
    except RecursionError:  # 100,000 nested brackets: a trace, where a mapping is a few flat keys
        raise SourceError(path, 0, expected, "nesting too deep") from None
    mapping = parse_mapping(data, path, lines)
    check_files(mapping, Path(folder))
    return mapping


def key_lines(text: str) -> dict[tuple, int]:
    """1-based line of every key of the mapping, up to two levels below the top:
    ("columns",), ("columns", "amount"), ("columns", "sales_pipeline.csv", "close_value")."""
    out: dict[tuple, int] = {}

    def walk(node, prefix: tuple, depth: int) -> None:
        if not isinstance(node, yaml.MappingNode) or depth > 2:
            return
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                here = (*prefix, str(key.value))
                out[here] = key.start_mark.line + 1
                walk(value, here, depth + 1)

    walk(yaml.compose(text), (), 0)
    return out


def inside(folder: Path, name: str | Path) -> Path:
    """`folder / name` when it stays inside the folder (relative, no `..`, no symlink out), else
    ValueError. Never reads the file."""
    rel = Path(name)
    if rel.is_absolute() or str(name).startswith("~") or ".." in rel.parts or not rel.parts:
        raise ValueError("an absolute path or one that leaves the folder with '..'")
    root = Path(folder).resolve()
    target = (Path(folder) / rel).resolve()
    if target != root and root not in target.parents:
        raise ValueError("a symlink that leads out of the folder")
    return Path(folder) / rel


def check_files(mapping: Mapping, folder: Path) -> None:
    """`files:` entries name files inside the source folder."""
    for canonical, name in mapping.files.items():
        try:
            inside(folder, name)
        except ValueError as exc:
            raise SourceError(mapping.origin, mapping.line("files", canonical),
                              f"files: {canonical}: a file name inside the source folder {folder}",
                              f"{name!r} is {exc}") from None


def parse_mapping(data: dict, path: Path | None = None, lines: dict[tuple, int] | None = None) -> Mapping:
    where = path or Path("mapping")
    lines = lines or {}
    if not isinstance(data, dict):
        raise SourceError(where, 1, "a YAML mapping (keys: " + ", ".join(sorted(KEYS - {"signature", "thousands"})) + ")",
                          f"found a {type(data).__name__}")
    unknown = set(data) - KEYS
    if unknown:
        raise SourceError(where, 1, "mapping keys among " + ", ".join(sorted(KEYS - {"signature", "thousands"})),
                          f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    stages = {str(k): str(v) for k, v in (data.get("stages") or {}).items()}
    bad = {k: v for k, v in stages.items() if v not in STAGES}
    if bad:
        raise SourceError(where, 1, f"stages mapped onto {', '.join(STAGES)}",
                          "got " + ", ".join(f"{k}: {v}" for k, v in bad.items()))
    decimal = str(data.get("decimal", "."))
    if decimal not in (".", ","):
        raise SourceError(where, 1, "decimal: '.' or ','", f"got {decimal!r}")
    columns = data.get("columns") or {}
    if not isinstance(columns, dict):
        raise SourceError(where, lines.get(("columns",), 1), "columns: a map of revintel column -> your column",
                          f"got a {type(columns).__name__}")
    columns = {str(k): (_columns(v, where, lines, (str(k),)) if isinstance(v, dict)
                        else _column(v, where, lines, ("columns", str(k))))
               for k, v in columns.items()}
    files = data.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise SourceError(where, lines.get(("files",), 1), "files: a map of revintel file name -> your file name",
                          "got something else")
    non_sellable = data.get("non_sellable_divisions") or []
    if isinstance(non_sellable, str):
        non_sellable = [non_sellable]
    if not isinstance(non_sellable, list) or not all(isinstance(v, (str, int, float)) for v in non_sellable):
        raise SourceError(where, lines.get(("non_sellable_divisions",), 1),
                          "non_sellable_divisions: a list of division names", "got something else")
    formats = data.get("date_formats") or []
    if isinstance(formats, str):
        formats = [formats]
    # each checked here, naming the mapping's line: a wrong one failed the run in DuckDB, or as a trace
    if not isinstance(formats, list) or any(not _strptime_format(f) for f in formats):
        raise SourceError(where, lines.get(("date_formats",), 1), "date_formats: strptime formats such as "
                          "'%d.%m.%Y' (see DuckDB's format specifiers)", "got " + repr(formats)[:200])
    encoding = data.get("encoding")
    if encoding is not None and not _codec(encoding):
        raise SourceError(where, lines.get(("encoding",), 1), "encoding: one revintel reads: utf-8, utf-16, "
                          "cp1252 / windows-1252 or latin-1 (convert other files to UTF-8 first)",
                          "got " + repr(encoding)[:200])
    return Mapping(path=path, layout=data.get("layout"), files={str(k): v for k, v in files.items()},
                   columns=columns, lines=lines,
                   stages=stages, date_formats=[str(f) for f in formats], decimal=decimal,
                   decimal_given="decimal" in data,
                   delimiter=str(data.get("delimiter", ",")), encoding=encoding,
                   signature=data.get("signature"), non_sellable=[str(v).strip() for v in non_sellable])


def _strptime_format(value) -> bool:
    if not isinstance(value, str) or "%" not in value:
        return False
    try:
        duckdb.sql("SELECT try_strptime('2024-01-31', ?)", params=[value]).fetchall()
    except duckdb.Error:
        return False
    return True


WINDOWS = ("latin-1", "latin1", "iso-8859-1", "cp1252", "windows-1252")  # read through a UTF-8 copy (raw_csv)
READ_ENCODINGS = ("utf-8", "utf8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", *WINDOWS)


def _codec(value) -> bool:
    """An encoding the reader implements (raw_csv: UTF-8, UTF-16, Windows-1252 / Latin-1 under their names):
    another one Python knows (ISO-8859-15, cp850) passed the check and was then read as UTF-8 without a word,
    every accented row quarantined (a re-check)."""
    if not isinstance(value, str):
        return False
    try:
        name = codecs.lookup(value).name
    except LookupError:
        return False
    return value.lower() in READ_ENCODINGS or name in ("utf-8", "utf-16", "utf-16-le", "utf-16-be")


def _columns(values: dict, where: Path, lines: dict, prefix: tuple) -> dict[str, str]:
    return {str(k): _column(v, where, lines, ("columns", *prefix, str(k))) for k, v in values.items()}


def _column(value, where: Path, lines: dict, keys: tuple) -> str:
    """A mapped column: a header name as written (`Rec Date`), or an expression in the grammar of
    ingest/expr.py; a lone quoted name (`"Customer's ID"`) is stored bare. Anything else stops here."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SourceError(where, lines.get(keys, 0), f"for {keys[-1]}: {expr.GRAMMAR}",
                          f"got a {type(value).__name__}")
    text = str(value).strip()
    try:
        node = expr.parse(text)
        return node.value if node.kind == "col" else text
    except expr.ExprError as exc:
        if expr.plausible_name(text):
            return text  # a header name with spaces or brackets, matched against the file's header
        raise SourceError(where, lines.get(keys, 0), f"for {keys[-1]}: {expr.GRAMMAR}",
                          f"{exc}; mapping values are never run as SQL") from None


def example(file: str, missing: list[str], found: list[str], taken: list[str] = ()) -> str:
    """The mapping a user would write for the missing columns, with our best guesses among
    the columns not already used (`taken`). A guess is a synonym or a related spelling
    (synonyms.related), never merely the closest string ('amount: Country' was)."""
    from revintel_assets.defs.ingest.synonyms import related, resolve

    spare = [c for c in found if c not in missing and c not in taken]
    lines = [f"  {file}:"]
    for m in missing:
        guess = [g] if (g := resolve(m, spare)) else [c for c in spare if related(m, c)][:1]
        if not guess and "date" in m.lower():  # created_on, changed_at, Created Time ...
            guess = [c for c in spare if any(w in c.lower() for w in ("date", "_on", "_at", "time"))][:1]
        if not guess and m == "amount":  # order lines: quantity times unit price
            qty, price = resolve("quantity", found), resolve("unit_price", found)
            if qty and price:
                lines.append(f'    {m}: "{qty} * {price}"')
                continue
        if guess:
            spare.remove(guess[0])
        lines.append(f"    {m}: {guess[0] if guess else '<your column>'}")
    return (f"Map your column names in {USER_MAPPING} in the source folder (or pass --mapping FILE), "
            "e.g.:\ncolumns:\n" + "\n".join(lines))
