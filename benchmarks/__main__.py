"""revintel benchmarks: every stage as its own process, at several scales.

    python -m benchmarks [--scales 1 10 100] [--runs 3] [--runs-large 1] [--stages ...] [--prepare-timeout S]
                         [--root /tmp/revintel-bench] [--json docs/benchmarks.json] [--table docs/BENCHMARKS.md]

For each scale: generate the demo company once (ROOT/s<scale>/demo), materialize the whole graph
once (`benchmarks.stage prepare`, i.e. what `revintel run --no-serve` does; timed and recorded as
the `full_run` row), then run each stage (benchmarks/stage.py) N times as a fresh Python process
against that warehouse. Per run: whole-process wall time and peak RSS of the process and its
children (os.wait4's rusage), and the 1-minute load average before and after (the box may be
shared). The JSON and the table hold the median of the runs. Results are merged into the JSON
file, so scales can be run one at a time.

Benchmarks are not tests: CI runs `tests/test_benchmarks_smoke.py`, a tiny scale with one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import machine
from benchmarks.stage import STAGES
from revintel_resources.settings import child_env

REPO = Path(__file__).resolve().parents[1]
LABELS = {
    "generate": "generation", "import": "import + star schema", "snapshot": "deal snapshot (1 as-of date)",
    "win_model": "win-model training (1 cutoff)", "scoring": "scoring + explanations",
    "scoring_all": "scoring + explanations, every as-of date", "forecast": "forecast",
    "backtest": "backtest", "icp_features": "ICP features (1 cutoff)", "icp_models": "division models (1 cutoff)",
    "whitespace": "whitespace (1 cutoff)", "nightly": "nightly rescore (1 as-of, + publish)",
    "full_run": "full run (`revintel run --no-serve`)",
}


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(args: list[str], env: dict | None = None, timeout: float | None = None,
            log: Path | None = None, max_rss_mib: float | None = None, cwd: Path = REPO) -> dict:
    """Run a command (in `cwd`: another tree's code for `python -m`); whole-process wall time, peak
    RSS (os.wait4: the process and the children it waited for), 1-minute load average before/after,
    and the stage's JSON line."""
    load_before = os.getloadavg()[0]
    log = log or Path(os.devnull)
    err_f, out_f = open(log, "w"), tempfile.TemporaryFile("w+")  # noqa: SIM115 (files, not pipes: no deadlock)
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out_f, stderr=err_f, text=True)
    deadline = start + timeout if timeout else None
    timed_out = over_memory = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline and not timed_out and time.perf_counter() > deadline:
            proc.kill()
            timed_out = True
        if max_rss_mib and not over_memory and _rss_mib(proc.pid) > max_rss_mib:
            proc.kill()  # a shared box: stop before the OOM killer picks someone else's process
            over_memory = True
        time.sleep(0.05)
    wall = time.perf_counter() - start
    out_f.seek(0)
    out = out_f.read()
    out_f.close()
    err_f.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    info = {}
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                info = json.loads(line)
                break
            except ValueError:
                pass
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "rc": proc.returncode,
            "timed_out": timed_out, "over_memory": over_memory, "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "info": info}


def _save(path: Path, results: dict, key: str, entry: dict) -> dict:
    """Merge this scale's entry into the file as it is now (another scale may be running too)."""
    current = json.loads(path.read_text()) if path.exists() else {}
    current.setdefault("scales", {})[key] = entry
    current["machine"] = results["machine"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(current, indent=1, default=str))
    os.replace(tmp, path)
    return current


def _stage_cmd(stage: str, data: Path, scale: float) -> list[str]:
    # `env` execs the stage in place (same pid, so wait4 still measures it) with DIR as its data dir
    assign = [f"{k}={v}" for k, v in child_env(data_dir=data).items()]
    return ["env", *assign, sys.executable, "-m", "benchmarks.stage", stage, "--data", str(data), "--scale", f"{scale:g}"]


def _summary(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["rc"] == 0 and not r["timed_out"]]
    base = {"runs": len(runs), "ok_runs": len(ok), "raw": runs}
    if not ok:
        last = runs[-1]
        status = (f"killed > {last['peak_rss_mb'] / 1024:.0f} GiB after {last['wall_s']:.0f} s"
                  if last.get("over_memory") else f"timeout after {last['wall_s']:.0f} s" if last["timed_out"]
                  else "failed")
        return {**base, "wall_s": None, "peak_rss_mb": None, "status": status}
    return {**base, "status": "ok", "wall_s": round(statistics.median(r["wall_s"] for r in ok), 2),
            "cpu_s": round(statistics.median(r.get("cpu_s", 0) for r in ok), 2),
            "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in ok), 1),
            "load_avg": round(statistics.median((r["load_before"] + r["load_after"]) / 2 for r in ok), 2)}


def prepare(scale: float, root: Path, timeout: float | None, logs: Path,
            jobs: list[str] | None = None) -> tuple[Path, dict | None]:
    """Generate and materialize a scale once; returns its data dir and the full-run measurement."""
    data = root / f"s{scale:g}"
    src = data / "demo"
    if not (src / "truth" / "summary.json").exists():
        print(f"  generating scale {scale:g} into {src}", flush=True)
        shutil.rmtree(src, ignore_errors=True)
        from revintel_assets.demo.generator import generate_company

        generate_company(src, scale=scale, seed=42, progress=False)
    marker = data / "prepared.json"
    if jobs == ["none"]:  # stages that need only the source (generate, import)
        return data, None
    if marker.exists():
        return data, json.loads(marker.read_text()).get("full_run")
    print(f"  materializing the whole graph at scale {scale:g} (full run) ...", flush=True)
    cmd = _stage_cmd("prepare", data, scale) + (["--jobs", *jobs] if jobs else [])
    run = measure(cmd, timeout=timeout, log=logs / f"prepare_s{scale:g}.log")
    full = _summary([run])
    if run["timed_out"] or run.get("over_memory"):  # killed mid-step: free its Dagster pool slot, or the
        # stages after it wait for that slot for ever (2026-12-03: a nightly spun 9 min on it)
        subprocess.run(_stage_cmd("cleanup", data, scale), cwd=REPO, capture_output=True)
    if run["rc"] != 0 or run["timed_out"]:
        print(f"  full run at scale {scale:g} {full['status']}; see {logs / f'prepare_s{scale:g}.log'}", flush=True)
    else:
        marker.write_text(json.dumps({"full_run": full if not jobs else None, "jobs": jobs}))
    return data, (full if not jobs else None)


def table(results: dict) -> str:
    scales = sorted(results["scales"], key=float)
    head = "| stage | " + " | ".join(f"scale {s}" for s in scales) + " |"
    lines = [head, "|" + " --- |" * (len(scales) + 1)]
    variants = sorted({k for s in scales for k in results["scales"][s] if "@" in k})
    for stage in [*STAGES, "full_run", *variants]:
        cells = []
        for s in scales:
            r = results["scales"][s].get(stage)
            if not r:
                cells.append("not run")
            elif r["status"] != "ok":
                cells.append(r["status"])
            else:
                cpu = f"{r['cpu_s']:.0f}" if r.get("cpu_s") is not None else "n/a"
                box = f" · {machine.describe(r['box'])}" if r.get("box") else ""
                cells.append(f"{r['wall_s']:.1f} s (cpu {cpu}) · {r['peak_rss_mb']:,.0f} MiB · "
                             f"load {r['load_avg']:.1f}{box} · n={r['ok_runs']}")
        base, _, label = stage.partition("@")
        lines.append(f"| {LABELS[base]}{f' [{label}]' if label else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--scales", nargs="+", type=float, default=[1, 10, 100])
    p.add_argument("--runs", type=int, default=3, help="runs per stage at scales below 100")
    p.add_argument("--runs-large", type=int, default=1, help="runs per stage at scale >= 100")
    p.add_argument("--stages", nargs="+", default=STAGES, choices=STAGES)
    p.add_argument("--root", type=Path, default=Path("/tmp/revintel-bench"))
    p.add_argument("--json", type=Path, default=REPO / "docs" / "benchmarks.json")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per stage run before it is killed")
    # the full run is what the 30-minute target times; at scale 100 it has taken 57-106 min here
    p.add_argument("--prepare-timeout", type=float, default=4 * 3600,
                   help="seconds for the full run (prepare) before it is killed")
    p.add_argument("--max-rss-gib", type=float, default=16, help="kill a stage run whose RSS passes this")
    p.add_argument("--no-full-run", action="store_true", help="fail instead of materializing an unprepared scale")
    p.add_argument("--prepare-jobs", nargs="+", help="prepare only these jobs of the graph ('none': only generate the source); "
                        "no full_run row then")
    p.add_argument("--table", type=Path, default=REPO / "docs" / "BENCHMARKS.md",
                   help="markdown file whose <!-- table:start/end --> block gets the table")
    p.add_argument("--render", action="store_true", help="only re-render the table from the JSON")
    p.add_argument("--label", help="store as STAGE@LABEL (a variant, e.g. --forecast-sims 2000 passed to benchmarks.stage)")
    args = p.parse_args(argv)
    if args.render:
        render(json.loads(args.json.read_text()), args.table)
        return 0

    args.root.mkdir(parents=True, exist_ok=True)
    logs = args.root / "logs"
    logs.mkdir(exist_ok=True)
    results = json.loads(args.json.read_text()) if args.json.exists() else {}
    results.setdefault("scales", {})
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform(),
                          "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
    for scale in args.scales:
        key = f"{scale:g}"
        runs = args.runs_large if scale >= 100 else args.runs
        print(f"scale {key}: {runs} run(s) per stage", flush=True)
        data = args.root / f"s{key}"
        full = None
        if args.no_full_run and not (data / "prepared.json").exists():
            raise SystemExit(f"{data} is not prepared")
        data, full = prepare(scale, args.root, args.prepare_timeout, logs, args.prepare_jobs)
        entry = results["scales"].setdefault(key, {})
        if full:
            entry["full_run"] = full
            results = _save(args.json, results, key, entry)
        for stage in args.stages:
            box = machine.probe()  # the box's speed when this stage was measured (benchmarks/machine.py)
            measured = []
            for i in range(runs):
                r = measure(_stage_cmd(stage, data, scale), timeout=args.timeout,
                            log=logs / f"{stage}_s{key}_{i}.log", max_rss_mib=args.max_rss_gib * 1024)
                measured.append(r)
                print(f"  {stage:<13} run {i + 1}: {r['wall_s']:8.1f} s {r['peak_rss_mb']:8.0f} MiB "
                      f"load {r['load_before']:.1f}->{r['load_after']:.1f}"
                      + ("" if r["rc"] == 0 else f"  FAILED rc={r['rc']} (log {logs})"), flush=True)
                if r["rc"] != 0 or r["timed_out"]:
                    if r["timed_out"] or r.get("over_memory"):  # killed: free its Dagster pool slot
                        subprocess.run(_stage_cmd("cleanup", data, scale), cwd=REPO, capture_output=True)
                    break
            entry[stage + (f"@{args.label}" if args.label else "")] = _summary(measured) | {
                "measured_at": dt.datetime.now().isoformat(timespec="seconds"), "box": box}
            results = _save(args.json, results, key, entry)
    if args.table.exists():
        render(results, args.table)
    print(table(results))
    return 0


def curve(results: dict) -> str:
    """Growth per stage: wall (and CPU) time ratios scale 1 -> 10 -> 100, against the 12x budget."""
    sc = results["scales"]

    def pick(stage, s):
        """The default run, else (scale 100) the first variant that completed, e.g. `[s10 model]`."""
        r = sc.get(s, {}).get(stage)
        if r and r.get("status") == "ok":
            return stage
        # like for like first: the variant scored by the same (scale-10) model as scale 10
        for k in sorted(sc.get(s, {}), key=lambda k: ("@s10 model" not in k, k)):
            if k.startswith(stage + "@") and "no model" not in k and sc[s][k].get("status") == "ok":
                return k
        return None

    def get(stage, s, k):
        key = pick(stage, s)
        return sc[s][key].get(k) if key else None

    def ratio(a, b):
        return f"{b / a:.1f}×" if a and b else "–"

    lines = ["| stage | wall 1 / 10 / 100 (s) | wall × 1→10 | wall × 10→100 | cpu × 10→100 | ≤ 12× (10→100) | scale 100 run |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for stage in [*STAGES, "full_run"]:
        w = [get(stage, s, "wall_s") for s in ("1", "10", "100")]
        c = [get(stage, s, "cpu_s") for s in ("1", "10", "100")]
        ok = "–" if not (w[1] and w[2]) else ("yes" if w[2] / w[1] <= 12 else
                                              f"no (cpu {c[2] / c[1]:.1f}×)" if c[1] and c[2] else "no")
        lines.append(f"| {LABELS[stage]} | {' / '.join(f'{x:.1f}' if x else '–' for x in w)} | "
                     f"{ratio(w[0], w[1])} | {ratio(w[1], w[2])} | {ratio(c[1], c[2])} | {ok} | "
                     f"{(pick(stage, '100') or sc.get('100', {}).get(stage, {}).get('status') or 'not run')} |")
    return "\n".join(lines)


def _replace_block(path: Path, name: str, body: str) -> None:
    if not path.exists():
        return
    text = path.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        path.write_text(head + start + "\n" + body + "\n" + end + rest.split(end, 1)[1])


def render(results: dict, path: Path) -> None:
    """Put the table between the <!-- table:start/end --> markers of `path`, and the growth curve
    into docs/SCALING.md's <!-- curve:start/end --> (files without markers are left alone)."""
    from benchmarks import scaling

    _replace_block(path, "table", table(results))
    _replace_block(path.with_name("SCALING.md"), "curve", curve(results))
    scaling.render(results, path.with_name("SCALING.md"))  # the chart (scaling.svg) and the 1,000x plan


if __name__ == "__main__":
    sys.exit(main())
