"""The run report's figures (kdistill/report.py), checked against hand counts."""

import numpy as np
import pytest

from kdistill import report


def _logits(predicted, k):
    return np.eye(k)[predicted]


def test_per_class_figures_and_confusion_match_hand_counts():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 0, 2])
    result = report.evaluation(labels, _logits(predicted, 3), ["a", "b", "c"])
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["confusion"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    a, b, c = result["per_class"]
    assert (a["precision"], a["recall"], a["support"]) == pytest.approx((2 / 3, 2 / 3, 3))
    assert (b["precision"], b["recall"]) == pytest.approx((1 / 2, 1 / 2))
    assert c["f1"] == 1.0
    assert result["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_wilson_interval_is_known_values_and_stays_in_range():
    low, high = report.wilson_interval(80, 100)
    assert (round(low, 4), round(high, 4)) == (0.7112, 0.8666)  # the textbook 95% Wilson interval of 80/100
    assert report.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert report.wilson_interval(0, 10)[0] == pytest.approx(0.0)


def test_paired_difference_narrows_with_rows_and_says_when_it_cannot_tell():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    a = np.where(rng.random(2000) < 0.85, labels, 1 - labels)  # about 85% right
    b = np.where(rng.random(2000) < 0.80, labels, 1 - labels)  # about 80% right
    big = report.paired_difference(labels, _logits(a, 2), _logits(b, 2))
    assert 0 < big["interval"][0] < big["difference"] < big["interval"][1]
    small = report.paired_difference(labels[:60], _logits(a[:60], 2), _logits(b[:60], 2))
    assert small["interval"][0] < 0 < small["interval"][1]
    assert "too small to tell them apart" in report._difference_line("x", small, "a", "b")
    assert "too small" not in report._difference_line("x", big, "a", "b")
    assert big["only_a_right"] - big["only_b_right"] == round(big["difference"] * 2000)
