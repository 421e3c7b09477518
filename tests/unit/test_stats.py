"""Statistics: the prompt-clustered CI, checked by hand."""

import math

import numpy as np
import pytest

from spin_core.stats import clustered_mean_ci


def test_clustered_ci_uses_per_prompt_means():
    values = np.array([[1.0, 3.0], [2.0, 2.0], [6.0, 4.0]])  # per-prompt means 2, 2, 5
    mean, lo, hi = clustered_mean_ci(values)
    se = np.std([2.0, 2.0, 5.0], ddof=1) / math.sqrt(3)
    assert mean == pytest.approx(3.0)
    assert (lo, hi) == pytest.approx((3.0 - 1.959964 * se, 3.0 + 1.959964 * se))
