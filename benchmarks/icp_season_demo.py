"""An Online Retail II-style demo for the ICP season checks: the demo generator with a strong
pre-Christmas purchase season (logit offsets by calendar month, peak October-November; the demo's
own season is +-0.35), so every window has the same season a year before it. Builds only the star
and the ICP features (what benchmarks/icp_calibration.py reads):

    REVINTEL_DATA_DIR=DIR python -m benchmarks.icp_season_demo DIR SEED
    python -m benchmarks.icp_calibration --variants succession,base5 DIR > rows.jsonl
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import revintel_assets.demo.generator as generator

CHRISTMAS = np.array([-0.8, -0.8, -0.5, -0.5, -0.5, -0.3, 0.0, 0.3, 0.8, 1.2, 1.5, 0.3])  # Jan..Dec


def main(out: Path, seed: int, scale: float = 0.5) -> None:
    from revintel_assets.cli import _generate
    from revintel_assets.definitions import load
    from revintel_assets.orchestrate import materialize_all

    generator.SEASON = CHRISTMAS  # the generator reads it per block of accounts
    start = time.time()
    print(_generate(out / "demo", scale, seed, 0.0))
    materialize_all(load(), resources={"source": {"path": str(out / "demo")}},
                    jobs=["import_job", "transactions_job", "icp_plan_job", "icp_features_job"])
    print("took", round(time.time() - start, 1), "s")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
