"""The scaling picture of docs/SCALING.md, drawn from docs/benchmarks.json by the benchmark
itself (`python -m benchmarks` and `--render` call `render`):

* docs/scaling.svg: wall time, CPU time and peak memory of every stage at each measured scale
  (log-log; a stage linear in scale rises one decade per decade);
* the simulated 1,000x plan: each stage extrapolated from its measured scale 10 -> 100 growth
  (t(1000) = t(100) x t(100)/t(10), never less than flat), where it would run and on which engine.
"""

from __future__ import annotations

from pathlib import Path

STAGE_ORDER = ["generate", "import", "snapshot", "win_model", "scoring", "forecast", "backtest",
               "icp_features", "icp_models", "whitespace", "nightly"]
METRICS = [("wall_s", "wall time (s)"), ("cpu_s", "CPU time (s)"), ("peak_rss_mb", "peak memory (MiB)")]

# Where each stage runs at 1,000x the demo (2 billion-row order of transaction lines): the
# engine, and what fans out. "steps" = Dagster executor (README "Past one machine"); "tasks" =
# the Dask interface (parallel.map_tasks, `--cluster`).
PLAN = {
    "generate": ("demo only (a real company brings its exports)", "numpy, streamed per block"),
    "import": ("import pod; star schema in MotherDuck; `fact_transactions` one step per month (steps)", "DuckDB / MotherDuck SQL"),
    "snapshot": ("one step per as-of date (steps), each a single SQL pass", "MotherDuck SQL"),
    "win_model": ("one step; every training cutoff's fit a task on the Dask cluster (tasks), the gate in cutoff "
                  "order; sample of whole deals above 3 M rows", "LightGBM + Dask"),
    "scoring": ("one step per as-of date; TreeSHAP blocks on the Dask cluster (tasks)", "LightGBM + Dask"),
    "forecast": ("one step; each past date of a range a task, the latest date's engine chunks of reps on the Dask cluster "
                 "(tasks)", "numba kernel + Dask"),
    "backtest": ("one step per backtest date (steps); every origin a task on the cluster (tasks)", "numba kernel + Dask"),
    "icp_features": ("one step per cutoff (steps)", "MotherDuck SQL"),
    "icp_models": ("one step; every cutoff × division fit a task on the Dask cluster (tasks); sample of whole "
                   "accounts above 40,000 rows", "LightGBM + Dask"),
    "whitespace": ("one step per cutoff", "MotherDuck SQL"),
    "nightly": ("one as-of date: snapshot, scores (TreeSHAP tasks), forecast (engine tasks)", "MotherDuck + Dask"),
}


def _value(results: dict, scale: str, stage: str, key: str) -> float | None:
    r = results.get("scales", {}).get(scale, {}).get(stage)
    return r.get(key) if r and r.get("status") == "ok" else None


def chart(results: dict, out: Path) -> Path | None:
    """Write the three-panel log-log chart; None when matplotlib is missing (the table stands)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "revintel"})  # text as text; stable ids
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from benchmarks.__main__ import LABELS

    scales = sorted(results.get("scales", {}), key=float)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    cmap = plt.get_cmap("tab20")
    for ax, (key, title) in zip(axes, METRICS):
        for i, stage in enumerate(STAGE_ORDER):
            pts = [(float(s), _value(results, s, stage, key)) for s in scales]
            pts = [(x, y) for x, y in pts if y]
            if pts:
                ax.plot(*zip(*pts), marker="o", color=cmap(i), label=LABELS[stage])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("scale (× the demo: 1 = 20,000 opportunities)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    if len(scales) >= 2:  # a linear-cost guide through the import's first point
        x0 = float(scales[0])
        y0 = _value(results, scales[0], "import", "wall_s")
        if y0:
            xs = [float(s) for s in scales]
            axes[0].plot(xs, [y0 * x / x0 for x in xs], "k--", lw=1, label="linear in scale")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("revintel, every stage as its own process (docs/benchmarks.json; 2-core shared box, medians)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    # no date in the file: it changes only when the figures do
    fig.savefig(out, format="svg", metadata={"Date": None})
    plt.close(fig)
    return out


def plan(results: dict) -> str:
    """The simulated 1,000x plan as a markdown table."""
    from benchmarks.__main__ import LABELS

    lines = ["| stage | measured at 100 (wall · CPU · peak) | growth 10→100 (wall) | extrapolated to 1,000 on this box | "
             "CPU ÷ 32 cores (cluster lower bound) | where it runs at 1,000× | engine |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    total_box = total_cluster = 0.0
    for stage in STAGE_ORDER:
        w10, w100 = _value(results, "10", stage, "wall_s"), _value(results, "100", stage, "wall_s")
        c10, c100 = _value(results, "10", stage, "cpu_s"), _value(results, "100", stage, "cpu_s")
        m10, m100 = _value(results, "10", stage, "peak_rss_mb"), _value(results, "100", stage, "peak_rss_mb")
        where, engine = PLAN[stage]
        if not (w10 and w100 and c10 and c100):
            lines.append(f"| {LABELS[stage]} | not measured | – | – | – | {where} | {engine} |")
            continue
        g, gc, gm = max(1.0, w100 / w10), max(1.0, c100 / c10), max(1.0, (m100 or 1) / (m10 or 1))
        w1000, c1000, m1000 = w100 * g, c100 * gc, (m100 or 0) * gm
        if stage not in ("generate", "nightly"):  # the from-scratch build (the nightly is a part of it)
            total_box += w1000
            total_cluster += c1000 / 32
        lines.append(f"| {LABELS[stage]} | {w100:,.0f} s · {c100:,.0f} s · {m100 / 1024:,.1f} GiB | {g:.1f}× | "
                     f"{w1000 / 60:,.0f} min, {m1000 / 1024:,.0f} GiB | {c1000 / 32 / 60:,.1f} min | {where} | {engine} |")
    lines.append(f"| **one pass of every stage** (generation and nightly excluded) | | | **{total_box / 3600:,.1f} h** | "
                 f"**{total_cluster / 60:,.0f} min** | | |")
    return "\n".join(lines)


def render(results: dict, scaling_md: Path) -> None:
    from benchmarks.__main__ import _replace_block

    chart(results, scaling_md.with_name("scaling.svg"))
    _replace_block(scaling_md, "plan", plan(results))
