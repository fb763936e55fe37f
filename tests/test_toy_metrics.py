"""Mode-coverage scores on hand-made samples."""

from __future__ import annotations

import numpy as np
import pytest

from ganzoo.data.toy import GRID25, RING8
from ganzoo.metrics.toy import mode_scores


def test_all_modes_exactly():
    samples = np.repeat(np.array(RING8.means), 10, axis=0)
    scores = mode_scores(samples, RING8)
    assert (scores.modes, scores.high_quality) == (8, 1.0)
    assert scores.reverse_kl == pytest.approx(0.0, abs=1e-12)


def test_one_mode():
    samples = np.tile(np.array(GRID25.means[3]), (100, 1))
    scores = mode_scores(samples, GRID25)
    assert scores.modes == 1 and scores.reverse_kl == pytest.approx(np.log(25))


def test_off_manifold_samples_are_low_quality():
    samples = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 0.07]])  # origin, on a mode, 3.5 std away
    scores = mode_scores(samples, RING8)
    assert scores.modes == 1 and scores.high_quality == pytest.approx(1 / 3)
