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


def test_new_word_rows_flag_the_dev_texts_with_a_word_no_training_text_holds(sst2_splits):
    training = sst2_splits.unlabelled_texts[:2000]
    dev = sst2_splits.dev_texts[:300]
    flagged = report.new_word_rows(dev, training)
    known = set().union(*(report.words(t) for t in training))
    for text, new in zip(dev, flagged):
        assert new == any(word not in known for word in report.words(text)), text
    assert 0 < flagged.sum() < len(dev)  # a 2,000-phrase pool leaves some of dev's words unseen, not all
    # Digits, punctuation and case are not words of their own; an inner apostrophe stays inside one.
    assert report.words("Don't , 1999 GREAT film") == {"don't", "great", "film"}
    assert not report.new_word_rows(["A great, GREAT film!"], ["a great film"]).any()
    assert report.new_word_rows(["a great film 2"], ["great film"]).all()  # "a" is new; "2" is no word


def test_new_word_figures_match_hand_counts_and_the_report_shows_them(tmp_path):
    new = np.array([True, True, False, False, False])
    labels = np.array([0, 1, 0, 1, 1])
    teacher, student = _logits(np.array([0, 1, 0, 1, 0]), 2), _logits(np.array([1, 1, 0, 1, 1]), 2)
    groups = report.by_new_words(new, labels, teacher, student)
    assert groups["new_word"] == {"rows": 2, "teacher_accuracy": 1.0, "student_accuracy": 0.5, "agreement": 0.5}
    assert groups["known_words"]["rows"] == 3 and groups["known_words"]["agreement"] == pytest.approx(2 / 3)
    lines = "\n".join(report._new_word_lines(groups, 10, 90))
    assert "2 of the 5 dev rows (40%) hold a word that no training text holds" in lines
    assert "| with a new word | 2 | 100.00% | 50.00% | 50.00% | 9.5% to 90.5% |" in lines  # the Wilson interval of 1/2
    # Five rows cannot show a lag: no advice, the interval instead.
    assert "More unlabelled text" not in lines and "does not show the rows with a new word lagging" in lines
    # CR's validation rows (seed 0): 241 rows with a new word at 80.9% agreement, 326 without at 89.9%.
    cr = {"new_word": {"rows": 241, "teacher_accuracy": 0.89, "student_accuracy": 0.77, "agreement": 0.809},
          "known_words": {"rows": 326, "teacher_accuracy": 0.91, "student_accuracy": 0.86, "agreement": 0.899}}
    lines = "\n".join(report._new_word_lines(cr, 1000, 1704))
    assert "9.0 points less often on the rows with a new word (95% interval 3.1 to 14.9)" in lines
    assert "More unlabelled text of the kind dev holds" in lines
