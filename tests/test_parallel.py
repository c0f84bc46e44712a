"""forked_rows: the same numbers as one process, whatever the number of workers."""

import numpy as np
import pytest

from revintel_assets import parallel


def test_forked_rows_equal_one_process(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_WORKER", 10)
    x = np.random.default_rng(0).normal(size=(1001, 4))
    fn = lambda part: np.column_stack([part.sum(axis=1), part.max(axis=1), np.arange(len(part)) * 0 + part[:, 0]])
    one = parallel.forked_rows(fn, x, 3, n_workers=1)
    for k in (2, 3, 7):
        assert np.array_equal(parallel.forked_rows(fn, x, 3, n_workers=k), one)


def test_a_failing_worker_is_an_error(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_WORKER", 10)

    def boom(part):
        raise ValueError("no")

    with pytest.raises(RuntimeError, match="worker process"):
        parallel.forked_rows(boom, np.zeros((100, 2)), 2, n_workers=2)
