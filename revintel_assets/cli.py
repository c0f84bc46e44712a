"""`revintel` command line (docs/CONTRACT.md §1): generate, demo, run, ui."""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import os
import sys
import time
from pathlib import Path

from revintel_resources import paths
from revintel_resources.settings import settings

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def _generate(out: Path, scale: float, seed: int, drift: float = 0.0) -> dict:
    from revintel_assets.demo.generator import generate_company

    return generate_company(out, scale=scale, seed=seed, progress=sys.stderr.isatty(),
                            fy_start_month=settings().fiscal_year_start_month, drift=drift)


def _date(text: str) -> str:
    """argparse type of --as-of: a calendar date written YYYY-MM-DD (kept as that text)."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date written YYYY-MM-DD (e.g. 2025-06-30), got {text!r}") from None


def _scale(text: str) -> float:
    """argparse type of --scale: a finite number above 0 (1 = the default company)."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number above 0 (1 = the default size, 0.1 a tenth), got {text!r}")
    return value


def cmd_generate(args) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"revintel: --out {out} is a file; give a folder (it is created when missing)", file=sys.stderr)
        return 2
    try:
        summary = _generate(out, args.scale, args.seed, args.drift)
    except OSError as exc:
        print(f"revintel: {_storage_failure(exc) or _unusable_dir(exc, '--out', out)}", file=sys.stderr)
        return 1
    drift = f", drift {args.drift:g}" if args.drift else ""
    print(f"Wrote the demo company (scale {args.scale:g}, seed {args.seed}{drift}) to {out}")
    for key in ("opportunities", "accounts", "reps", "transaction_lines", "closed_win_rate"):
        if key in summary:
            print(f"  {key}: {summary[key]}")
    return 0


def cmd_demo(args) -> int:
    source = paths.demo_source_dir()
    generated = None
    if not (source / "sales_pipeline.csv").exists():
        from revintel_assets.parallel import in_background

        print(f"Generating the demo company (scale {args.scale:g}) into {source} ...")
        # in a pool process, while this one imports the libraries and loads the definitions
        # (~3 s): ~0.8 s of the demo's start. Seeded: the same files wherever it runs.
        generated = in_background(_generate, source, args.scale, args.seed, args.drift)
    # The demo's ground truth is read only to report oracle metrics beside the models', never
    # by a feature or a model (revintel_assets/defs/validation/oracle.py).
    try:
        return _materialize({"path": str(source), "truth_dir": str(source / "truth")}, args, ready=generated)
    finally:  # an early exit (another run holds the data directory) still leaves whole files behind
        if generated is not None:
            with contextlib.suppress(Exception):  # its failure was reported by _materialize
                generated()


def cmd_run(args) -> int:
    source = {"path": str(Path(args.source).expanduser().resolve())}
    if args.format:
        source["format"] = args.format
    if args.mapping:  # read by the import (ingest/mapping.py)
        source["mapping"] = str(Path(args.mapping).expanduser().resolve())
    return _materialize(source, args)


def _materialize(source: dict[str, str], args, ready=None) -> int:
    """Every step of the run plan, the source given to the assets as the `source` resource's run
    config (what the launchpad shows for these runs), never through the environment; likewise
    `--cluster` as the `compute` resource's. `ready`: a call that waits for the source to be
    written (the demo's generation), made before the first job."""
    from revintel_assets.definitions import load
    from revintel_assets.orchestrate import materialize_all

    from revintel_resources.runlock import RunLocked, run_lock

    if getattr(args, "as_of", None):
        source["as_of"] = args.as_of
    try:  # one run per data directory: a second one waits, or with --no-wait exits 3 (runlock.py)
        with run_lock(paths.data_dir(), f"{getattr(args, 'command', 'run')} on {source['path']}",
                      wait=not getattr(args, "no_wait", False)):
            log = _quiet_libraries()
            print(f"revintel: materializing the asset graph on {source['path']}"
                  + (f"\n          (library messages and stack traces: {log})" if log else ""))
            start = time.perf_counter()
            unreachable = _cluster_problem(args.cluster)
            if unreachable:
                print(f"revintel: {unreachable}", file=sys.stderr)
                return 2
            try:
                # "" (--cluster ""): this machine's cores, whatever REVINTEL_CLUSTER says
                resources = {"source": source,
                             **({"compute": {"cluster": args.cluster}} if args.cluster is not None else {})}
                defs = load()
                if ready is not None:
                    ready()
                with _fewer_collections():  # after load(): its objects are among those frozen
                    records = materialize_all(defs, resources=resources)
            except Exception as exc:  # Dagster wraps the user's error; show the root cause plainly
                return _failed(exc, log)
            _summary(records, time.perf_counter() - start, getattr(args, "as_of", None))
    except RunLocked as exc:
        print(f"revintel: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:  # the data directory itself cannot be created or locked
        storage = _storage_failure(exc)
        print(f"revintel: {storage or _unusable_dir(exc, 'REVINTEL_DATA_DIR')}", file=sys.stderr)
        return 1
    if args.no_serve:
        return 0
    # the UI's sensors and launchpad default to the source just materialized; not to its --as-of: that
    # was this run's question, and the sensor's imports and the nightly then stayed capped at it
    return _serve(settings_env={**{("source" if k == "path" else k): v for k, v in source.items() if k != "as_of"},
                                "cluster": args.cluster})


@contextlib.contextmanager
def _fewer_collections():
    """The run with fewer and shorter cyclic garbage collections. Python's default (a young
    collection every 700 net allocations, a full one walking the whole heap every 100 of them, when
    it grew by a quarter) cost ~2.1 s of the demo's main process (gc.callbacks: 11 full collections
    of up to 650,000 objects, most of them Dagster's definitions and the libraries' modules, alive
    until the process ends). Those are frozen (never walked again; reference counting still frees
    them) and collections come 14x less often: 1.0 s. Undone afterwards: tests call main() again
    in one process."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _quiet_libraries() -> Path | None:
    """Library messages to the log file under the data directory (console.py); None when it
    cannot be written (a full disk: the run will say so)."""
    from revintel_assets.console import route_library_output

    try:
        return route_library_output(paths.log_file())
    except OSError:
        return None


def _failed(exc: Exception, log: Path | None) -> int:
    """One plain line for a failed run (exit 2: the source cannot be used; 1: anything else); the
    stack trace goes to the Dagster run log (the UI's run page) and the log file, not the console."""
    import logging

    from revintel_assets.defs.ingest.errors import InputError, SourceError
    from revintel_assets.orchestrate import RunFailed

    run = next((e for e in _chain(exc) if isinstance(e, RunFailed)), None)
    where = " and ".join(x for x in (f"the Dagster run log of run {run.run_id[:8]} ({run.job})" if run else "",
                                     str(log) if log else "") if x)
    logging.getLogger("revintel").error("run failed", exc_info=exc)
    root = _root_cause(exc)
    if isinstance(root, SourceError):
        print(f"revintel: cannot import the source: {root}", file=sys.stderr)
        return 2
    if isinstance(root, InputError):
        print(f"revintel: {root}", file=sys.stderr)
        return 2
    storage = _storage_failure(exc)
    if storage:
        print(f"revintel: {storage}", file=sys.stderr)
        return 1
    step = next((e.step_key for e in _chain(exc) if getattr(e, "step_key", None)), None)
    first = (str(root).strip().splitlines() or [""])[0]
    print(f"revintel: the run failed{f' in step {step}' if step else ''}: {type(root).__name__}: {first}"
          + (f" (stack trace: {where})" if where else ""), file=sys.stderr)
    return 1


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (Dagster's user_exception, then __cause__)."""
    out, seen = [], exc
    while seen is not None and seen not in out and len(out) < 50:
        out.append(seen)
        seen = getattr(seen, "user_exception", None) or seen.__cause__
    return out


def _root_cause(exc: BaseException) -> BaseException:
    """The first SourceError or InputError in the chain (one raised from a library error keeps its
    own message and exit code 2), else the innermost exception."""
    from revintel_assets.defs.ingest.errors import InputError, SourceError

    chain = _chain(exc)
    return next((e for e in chain if isinstance(e, (SourceError, InputError))), chain[-1])


# errno and the words DuckDB, sqlite and Python use for them
_STORAGE = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
            errno.EPERM: "permission denied", errno.EIO: "an I/O error"}
_STORAGE_WORDS = {"no space left on device": errno.ENOSPC, "disk quota exceeded": errno.EDQUOT,
                  "database or disk is full": errno.ENOSPC, "read-only file system": errno.EROFS,
                  "attempt to write a readonly database": errno.EROFS, "permission denied": errno.EACCES,
                  "disk i/o error": errno.EIO}  # sqlite's word for a write that failed (often: disk full)


def _free_bytes(path) -> int:
    try:
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize
    except OSError:
        return 1 << 62


def _storage_failure(exc: BaseException) -> str | None:
    """One line for a run that failed because the data directory cannot be written (disk full,
    read-only, no permission), else None. The published analyst file is only ever replaced
    whole by publish(), so it is unchanged."""
    for e in _chain(exc):
        code = e.errno if isinstance(e, OSError) and e.errno in _STORAGE else None
        if code is None:
            text = str(e).lower()
            code = next((c for words, c in _STORAGE_WORDS.items() if words in text), None)
        if code is not None:
            where = getattr(e, "filename", None) or paths.data_dir()
            what = _STORAGE[code]
            if code == errno.EIO and _free_bytes(paths.data_dir()) < (1 << 20):
                what = "the disk is full"
            return (f"cannot write the data directory ({where}): {what}. The published "
                    f"analyst file {paths.analyst_db_path()} is unchanged; free space or fix the "
                    "permissions and run again.")
    return None


def _summary(records: list[dict], seconds: float, as_of: str | None = None) -> None:
    """Row counts of the published tables, then the business headline (headline.py); `as_of`: the
    run's --as-of."""
    import datetime as dt

    from revintel_assets.headline import headline
    from revintel_resources.publish import connect_published
    from revintel_resources.source import clamp_as_of

    db = paths.analyst_db_path()
    print(f"\nDone in {seconds:.1f}s. Analyst file (open it read-only at any time): {db}")
    con = connect_published(db)
    try:
        rows = con.execute(
            "SELECT schema_name || '.' || table_name, estimated_size FROM duckdb_tables() "
            "WHERE schema_name NOT IN ('staging', 'meta') ORDER BY 1").fetchall()
        for name, _ in rows:
            n = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            print(f"  {name:<40} {n:>12,} rows")
        src = con.execute("SELECT source_format, export_date FROM meta.source").fetchall()
        day = None
        if src:
            # the date scored: the export date, or an earlier --as-of (never a later one)
            day = clamp_as_of(dt.date.fromisoformat(as_of) if as_of else None, src[0][1])
            print(f"Source layout: {src[0][0]}; export date: {src[0][1]}"
                  + (f"; scored as of {day} (--as-of)" if day != src[0][1] else " (the as-of date)"))
        print("\n" + "\n".join(headline(con, day)))
    finally:
        con.close()


def _claim_ui():
    """This UI's lock on the data directory, held while it serves (the OS releases it when the
    process dies), and the recovery of runs a stopped UI left STARTED; None, and no recovery, when
    another UI holds it: that UI's runs are alive."""
    import filelock

    paths.data_dir().mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(paths.data_dir() / ".ui.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        print("revintel: another revintel ui serves this data directory; its runs are left as they are",
              file=sys.stderr)
        return None
    _recover_runs_of_a_stopped_ui()
    return lock


def _serve(dagster_port: int = 3000, streamlit_port: int = 8501, settings_env: dict | None = None) -> int:
    from revintel_resources.instance import ensure_dagster_home
    from revintel_resources.settings import child_env

    ui_lock = _claim_ui()
    # the children's environment (this process's own is never changed)
    env = {**os.environ, "DAGSTER_HOME": str(ensure_dagster_home()), **child_env(**(settings_env or {}))}
    # publish_after_success publishes inside the sensor's evaluation; a whole copy of a scale-100 file
    # (after an import or the ICP steps) takes 60-75 s here, past Dagster's 60 s default for a sensor
    env.setdefault("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS", "600")
    # the digest's links to Deal Detail reach the app this UI serves, unless REVINTEL_APP_URL says
    # otherwise (they pointed at 8501 while the app ran on --streamlit-port 8630: a re-check)
    env.setdefault("REVINTEL_APP_URL", f"http://127.0.0.1:{streamlit_port}")
    logs = paths.log_file().parent
    try:
        return _serve_children(dagster_port, streamlit_port, env, logs)
    finally:
        if ui_lock is not None:
            ui_lock.release()


def _serve_children(dagster_port: int, streamlit_port: int, env: dict, logs: Path) -> int:
    from revintel_assets.serve import Child, serve

    return serve([
        Child("Dagster UI", [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
                             "-h", HOST, "-p", str(dagster_port)], dagster_port, logs / "dagster.log"),
        Child("Streamlit app", [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboards" / "app.py"),
                                "--server.headless", "true", "--server.address", HOST,
                                "--server.port", str(streamlit_port), "--browser.gatherUsageStats", "false"],
              streamlit_port, logs / "streamlit.log"),
    ], HOST, REPO, env)


def _recover_runs_of_a_stopped_ui() -> None:
    """A run in flight when the UI stopped died with its code server, but stayed STARTED and held
    the one `warehouse` pool slot: every later warehouse run, the nightly included, queued behind
    it until someone freed the slot by hand (an audit; Dagster's run monitoring did not fail it).
    Called only when no other UI serves the data directory (its lock, _serve): then no run of it
    can be alive except a CLI run, which carries its pid and is left alone while it lives
    (instance.recover_dead_runs)."""
    from revintel_resources.instance import dagster_instance, recover_dead_runs

    try:
        recovered = recover_dead_runs(dagster_instance(), every_started=True)
    except Exception as exc:  # never stop the UI over it: say so
        print(f"revintel: could not check for runs left started by a stopped UI ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return
    if recovered:
        print(f"revintel: {len(recovered)} run(s) left started when the UI last stopped were marked failed and "
              f"their pool slots freed ({', '.join(r[:8] for r in recovered)}); re-execute them from the UI")


def cmd_ui(args) -> int:
    unreachable = _cluster_problem(None)  # the daemon's runs send their kernels there: said now, not in a run
    from revintel_assets import parallel

    parallel.close_clients()  # checked; this process only serves (its connection stayed open for as long)
    if unreachable:
        print(f"revintel: {unreachable}", file=sys.stderr)
        return 2
    try:
        return _serve(args.dagster_port, args.streamlit_port)
    except OSError as exc:  # the data directory cannot be made (a file in its place, /proc ...)
        if exc.errno not in (errno.ENOTDIR, errno.EEXIST, errno.ENOENT, errno.EACCES, errno.EROFS, errno.ENOSPC):
            raise
        print(f"revintel: {_storage_failure(exc) or _unusable_dir(exc, 'REVINTEL_DATA_DIR')}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="revintel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write the demo company's raw files")
    g.add_argument("--out", required=True)
    g.add_argument("--scale", type=_scale, default=1.0)
    g.add_argument("--seed", type=int, default=42)
    g.set_defaults(fn=cmd_generate)
    drift_help = ("0 = a stationary world; X > 0 scales win odds falling over the history, rep turnover "
                  "and wandering skill, stronger seasonality and a product launched mid-history")

    d = sub.add_parser("demo", help="generate the demo company (if missing) and materialize everything")
    d.add_argument("--scale", type=_scale, default=1.0, help="demo size when it is generated")
    d.add_argument("--seed", type=int, default=42)
    d.set_defaults(fn=cmd_demo)
    for p in (g, d):
        p.add_argument("--drift", type=float, default=0.0, help=drift_help + " (demo: when it is generated)")

    r = sub.add_parser("run", help="materialize everything on a folder of real exports")
    r.add_argument("--source", required=True)
    from revintel_assets.defs.ingest.source import CRM_FORMATS, TX_FORMATS  # the layouts' one declaration

    r.add_argument("--format", help=f"force the layout: {', '.join(CRM_FORMATS + TX_FORMATS)}, or a CRM+log "
                                    "pair such as maventech+sales_log")
    r.add_argument("--mapping", help="mapping file (YAML) for a variant export; default "
                                     "DIR/revintel_mapping.yaml (README: 'Bring your own export')")
    r.set_defaults(fn=cmd_run)
    for p in (d, r):
        p.add_argument("--no-serve", action="store_true", help="exit after materializing")
        p.add_argument("--no-wait", action="store_true", help="when another run holds the data directory, "
                                                              "exit with code 3 instead of waiting for it")
        p.add_argument("--as-of", type=_date, help="score as of this date (YYYY-MM-DD) instead of the source's "
                                                   "export date")
        p.add_argument("--cluster", help="Dask scheduler (tcp://HOST:PORT) the heavy kernels' tasks go to; "
                                         "default REVINTEL_CLUSTER, else this machine's cores")

    u = sub.add_parser("ui", help="start the Dagster UI + daemon and the Streamlit app")
    u.add_argument("--dagster-port", type=int, default=3000)
    u.add_argument("--streamlit-port", type=int, default=8501)
    u.set_defaults(fn=cmd_ui)

    args = parser.parse_args(argv)
    bad = _settings_problems()
    if bad:
        print(f"revintel: {bad}", file=sys.stderr)
        return 2
    try:
        return args.fn(args)
    except BaseException as exc:  # Ctrl+C during a run (Dagster's form of it too): its run is marked failed
        if not isinstance(exc, KeyboardInterrupt) and type(exc).__name__ != "DagsterExecutionInterruptedError":
            raise
        print("\nrevintel: interrupted; the published analyst file is unchanged", file=sys.stderr)
        return 130


def _cluster_problem(given: str | None) -> str | None:
    """The Dask scheduler the run's tasks go to, reached before the first job: it was first asked
    for in the fourth job, after the import (a new source already switched to), with a raw
    ConnectionRefusedError, ValueError or MemoryError (something not Dask answering)."""
    from revintel_resources.settings import settings

    address, where = (given, "--cluster") if given is not None else (settings().cluster, "REVINTEL_CLUSTER")
    if not address:  # unset, or --cluster "": this machine
        return None
    from revintel_assets import parallel

    reason = _scheduler_silent(address)
    if reason is None:
        try:
            # its workers too: one that cannot import revintel died on its first task and the run waited
            # for ever; one with other code would give other numbers (an audit of the cluster)
            problems = parallel.worker_problems(address)
        except (Exception, MemoryError) as exc:  # noqa: BLE001 (whatever answered, or nothing did)
            if isinstance(exc, parallel.ClusterError) and exc.__cause__ is not None:
                exc = exc.__cause__  # the connection's own error: this line says the rest
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        else:
            if not problems:
                if not parallel._client(address).scheduler_info()["workers"]:  # allowed: workers may join later
                    print(f"revintel: the Dask cluster at {address} has no worker yet: its tasks wait for one "
                          f"(at most {parallel.NO_WORKER_S:.0f} s without any)")
                return None
            return (f"the Dask cluster at {address} ({where}) cannot run revintel's tasks: " + "; ".join(problems[:3])
                    + (f"; and {len(problems) - 3} more" if len(problems) > 3 else ""))
    return (f"cannot reach the Dask scheduler at {address} ({where}): {reason}. Start it (`dask scheduler`, "
            "then `dask worker ADDRESS`) or leave the setting out to use this machine's cores")


def _scheduler_silent(address: str) -> str | None:
    """Why a tcp:// address is no Dask scheduler, from a plain socket in seconds: a scheduler writes
    its handshake as soon as it accepts a connection. Dask's own client waited 30 s on a refused
    port and for ever on a program that accepts and says nothing (an HTTP server, the dashboard's
    port 8787 for the scheduler's 8786), holding the run lock."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # Dask's client waited 30 s on it, then said it timed out
        return "its port is not a number from 1 to 65535"
    if parts.scheme != "tcp" or not host or not port:
        return None  # tls://, inproc:// ...: Dask's client judges them (it names a malformed one)
    try:
        conn = socket.create_connection((host, port), timeout=5)
    except socket.timeout:  # dropped, not refused: not "something accepts connections there"
        return "nothing answered within 5 s (the host is down, or a firewall drops the connection)"
    except OSError as exc:
        return str(exc.strerror or exc)
    try:
        with conn:
            conn.settimeout(5)
            first = conn.recv(1)
    except socket.timeout:
        return ("something accepts connections there but sent no Dask handshake in 5 s (the scheduler's port, "
                "8786 by default, not its dashboard's 8787?)")
    except OSError as exc:
        return str(exc.strerror or exc)
    return None if first else "it closed the connection without a Dask handshake"


def _unusable_dir(exc: OSError, what: str, folder: Path | None = None) -> str:
    """A directory that cannot be made or used (a file in its place, /proc, a path through a file):
    one line naming it (it was FileExistsError's traceback)."""
    return f"cannot use {folder or exc.filename or 'the directory'} ({what}): {exc.strerror or exc}"


def _settings_problems() -> str | None:
    """The REVINTEL_* environment checked before anything runs: an invalid value is one line naming
    the variable and what it must be (it was a pydantic traceback, exit 1); a name that is not a
    setting but close to one is named with the one meant (REVINTEL_DATADIR was ignored in silence,
    and the run wrote to ./data)."""
    import difflib

    from pydantic import ValidationError

    from revintel_resources.settings import Settings, settings

    names = [f"REVINTEL_{f.upper()}" for f in Settings.model_fields]
    for var in sorted(v for v in os.environ if v.upper().startswith("REVINTEL_") and v.upper() not in names):
        meant = difflib.get_close_matches(var.upper(), names, n=1, cutoff=0.85)
        if meant:
            print(f"revintel: warning: {var} is not a setting revintel reads; did you mean {meant[0]}?", file=sys.stderr)
    try:
        settings()
    except ValidationError as exc:
        return "; ".join(f"REVINTEL_{str(e['loc'][0]).upper()}={e.get('input')!r}: "
                         f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
    from revintel_resources.backends import UnknownWarehouseBackend, resolve

    try:  # the warehouse engine too: it was refused in the first job, exit 1 and a stack trace logged
        resolve()
    except UnknownWarehouseBackend as exc:
        return str(exc)
    return None


def command() -> int:
    """The `revintel` command: main(), then an exit that skips the interpreter's last garbage
    collections. After a run the heap holds ~640,000 objects (Dagster's definitions, events,
    models), and the collections Python runs while shutting down walked them for ~2.5 s of the
    demo's wall time (py-spy: gc_collect_main after the last atexit handler). Frozen objects are
    still freed by reference counting and atexit handlers still run; only the cycle search
    over them is skipped. Tests call main() and keep their heap collectable."""
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(command())
