"""Column expressions of a mapping file: a small grammar parsed and rebuilt by revintel, never
pasted SQL (issue 18, docs/SECURITY.md).

A mapped value names a column of the export, or computes one from its columns:

    expr     := term (("+" | "-") term)*
    term     := unary (("*" | "/") unary)*
    unary    := ("-" | "+") unary | atom
    atom     := number | column | "(" expr ")" | function
    column   := name | '"' any text, "" for a quote '"'
    name     := letter or _ followed by letters, digits, _
    number   := 12 | 1.5 | .5 | 1e3
    function := try_cast "(" expr AS type ")"   type: DOUBLE, FLOAT, INTEGER, BIGINT, DECIMAL, VARCHAR
              | cast "(" expr AS type ")"       (read as try_cast: a bad value is NULL, never an error)
              | abs "(" expr ")" | round "(" expr ["," integer] ")"
              | coalesce "(" expr ("," expr)* ")"

Everything else (quotes, semicolons, other functions or keywords, comments) is rejected. The SQL
is rebuilt from the parsed tree: every column through `quote_ident`, numbers re-printed, types
and function names from the whitelist above. In arithmetic a column is read as a number
(`try_cast(col AS DOUBLE)`), so `Quantity * UnitPrice` works on the all-text staging table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TYPES = {"DOUBLE": "DOUBLE", "FLOAT": "DOUBLE", "REAL": "DOUBLE", "INTEGER": "INTEGER", "INT": "INTEGER",
         "BIGINT": "BIGINT", "DECIMAL": "DECIMAL(18,4)", "NUMERIC": "DECIMAL(18,4)", "VARCHAR": "VARCHAR",
         "TEXT": "VARCHAR"}
FUNCTIONS = ("try_cast", "cast", "abs", "round", "coalesce")
GRAMMAR = ("a column name, or an expression of column names, numbers, + - * / and parentheses "
           "(functions: try_cast(x AS DOUBLE), abs, round, coalesce)")
MAX_LENGTH = 500

_TOKEN = re.compile(r"""\s*(?:
    (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<quoted>"(?:[^"]|"")*")
  | (?P<op>[-+*/(),])
)""", re.VERBOSE)


class ExprError(ValueError):
    """The text is not in the grammar; the message says where and what was found."""


def quote_ident(name: str) -> str:
    """The one way an identifier coming from data (a header, a mapping) reaches SQL."""
    return '"' + str(name).replace('"', '""') + '"'


@dataclass(frozen=True)
class Node:
    kind: str  # col, num, neg, bin, cast, call
    value: str = ""
    args: tuple = ()


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            shown = text[pos:pos + 12]
            raise ExprError(f"unexpected {shown!r} at character {pos + 1}")
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        if len(text) > MAX_LENGTH:
            raise ExprError(f"longer than {MAX_LENGTH} characters")
        if any(ord(c) < 32 for c in text):
            raise ExprError("contains a control character (a newline?)")
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, value: str | None = None) -> tuple[str, str, int] | None:
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        if tok and value is not None:
            return tok if (tok[0] == "op" and tok[1] == value) or (tok[0] == "name" and tok[1].upper() == value) else None
        return tok

    def take(self, value: str, what: str) -> None:
        if not self.peek(value):
            tok = self.peek()
            raise ExprError(f"expected {what} " + (f"at character {tok[2] + 1}, found {tok[1]!r}" if tok else "at the end"))
        self.i += 1

    def parse(self) -> Node:
        if not self.toks:
            raise ExprError("empty")
        node = self.expr(0)
        if self.i < len(self.toks):
            tok, before = self.toks[self.i], self.toks[self.i - 1]
            hint = ""
            if tok[0] == "name" and before[0] == "name":  # Unit Price * Quantity
                hint = f' (a column name with spaces goes in double quotes: "{before[1]} {tok[1]}")'
            raise ExprError(f"unexpected {tok[1]!r} at character {tok[2] + 1}{hint}")
        return node

    def expr(self, depth: int) -> Node:
        if depth > 50:
            raise ExprError("nested too deeply")
        node = self.term(depth)
        while self.peek("+") or self.peek("-"):
            op = self.toks[self.i][1]
            self.i += 1
            node = Node("bin", op, (node, self.term(depth)))
        return node

    def term(self, depth: int) -> Node:
        node = self.unary(depth)
        while self.peek("*") or self.peek("/"):
            op = self.toks[self.i][1]
            self.i += 1
            node = Node("bin", op, (node, self.unary(depth)))
        return node

    def unary(self, depth: int) -> Node:
        if self.peek("-") or self.peek("+"):
            op = self.toks[self.i][1]
            self.i += 1
            inner = self.unary(depth + 1)
            return Node("neg", "", (inner,)) if op == "-" else inner
        return self.atom(depth)

    def atom(self, depth: int) -> Node:
        tok = self.peek()
        if tok is None:
            raise ExprError("expression ends too early")
        kind, value, pos = tok
        self.i += 1
        if kind == "number":
            return Node("num", value)
        if kind == "quoted":
            name = value[1:-1].replace('""', '"')
            if not name:
                raise ExprError(f"empty column name at character {pos + 1}")
            return Node("col", name)
        if kind == "op":
            if value == "(":
                node = self.expr(depth + 1)
                self.take(")", "')'")
                return node
            raise ExprError(f"unexpected {value!r} at character {pos + 1}")
        # a name: a function when followed by "(", else a column
        if not self.peek("("):
            return Node("col", value)
        fn = value.lower()
        if fn not in FUNCTIONS:
            raise ExprError(f"function {value!r} is not allowed (only {', '.join(FUNCTIONS)})")
        self.i += 1
        if fn in ("try_cast", "cast"):
            inner = self.expr(depth + 1)
            self.take("AS", "AS <type>")
            tok = self.peek()
            if tok is None or tok[0] != "name" or tok[1].upper() not in TYPES:
                raise ExprError(f"a type among {', '.join(sorted(set(TYPES)))} after AS"
                                + (f", found {tok[1]!r}" if tok else ""))
            self.i += 1
            self.take(")", "')'")
            return Node("cast", TYPES[tok[1].upper()], (inner,))
        args = [self.expr(depth + 1)]
        while self.peek(","):
            self.i += 1
            args.append(self.expr(depth + 1))
        self.take(")", "')'")
        if fn == "abs" and len(args) != 1:
            raise ExprError("abs takes one argument")
        if fn == "round" and (len(args) > 2 or (len(args) == 2 and args[1].kind != "num")):
            raise ExprError("round takes an expression and optionally a number of digits")
        return Node("call", fn, tuple(args))


def parse(text: str) -> Node:
    """The parsed expression, or ExprError."""
    return _Parser(str(text)).parse()


def is_compound(text: str) -> bool:
    """True when the text parses as an expression that is more than one column name."""
    try:
        return parse(text).kind != "col"
    except ExprError:
        return False


def columns(node: Node) -> list[str]:
    if node.kind == "col":
        return [node.value]
    return [c for a in node.args for c in columns(a)]


NUMERIC_TYPES = ("DOUBLE", "FLOAT", "DECIMAL")


def to_sql(node: Node, numeric: bool = True, number=None) -> str:
    """SQL rebuilt from the tree; `numeric`: a column here is read as a number, by `number` (the
    quoted column -> SQL: the source's money rules and decimal separator) when given, else try_cast."""
    if node.kind == "col":
        if not numeric:
            return quote_ident(node.value)
        return number(quote_ident(node.value)) if number else f"try_cast({quote_ident(node.value)} AS DOUBLE)"
    if node.kind == "num":
        if not any(c in node.value for c in ".eE"):
            return str(int(node.value))
        value = float(node.value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ExprError(f"number {node.value} is out of range")
        return repr(value)
    if node.kind == "neg":
        return f"(- {to_sql(node.args[0], number=number)})"
    if node.kind == "bin":
        return f"({to_sql(node.args[0], number=number)} {node.value} {to_sql(node.args[1], number=number)})"
    if node.kind == "cast":
        # a column cast to a number is a number as exported ('€1.25', '2,55' in a decimal-comma file)
        if number and node.args[0].kind == "col" and node.value.split("(")[0] in NUMERIC_TYPES:
            return f"try_cast({number(quote_ident(node.args[0].value))} AS {node.value})"
        return f"try_cast({to_sql(node.args[0], numeric=False)} AS {node.value})"
    if node.kind == "call":
        return f"{node.value}({', '.join(to_sql(a, number=number) for a in node.args)})"
    raise AssertionError(node.kind)


def compile_expr(text: str, available: list[str] | None = None, number=None) -> str:
    """SQL for a mapping expression; `available`: the file's columns (an unknown one is an error);
    `number`: how a column read as a number is read (to_sql)."""
    node = parse(text)
    if available is not None:
        unknown = [c for c in dict.fromkeys(columns(node)) if c not in available]
        if unknown:
            raise ExprError(f"no column {', '.join(map(repr, unknown))} in the file")
    return to_sql(node, number=number)


def plausible_name(text: str) -> bool:
    """A value that may be a header name written as is (`Rec Date`, `Amount (EUR)`): no quote,
    semicolon, backslash, SQL comment or control character."""
    return bool(text.strip()) and len(text) <= MAX_LENGTH and not any(
        c in text for c in ("'", '"', ";", "\\", "`", "--", "/*")) and not any(ord(c) < 32 for c in text)
