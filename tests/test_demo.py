"""`apps.demo`, the main job: a small run in the default suite, the real one marked slow."""

import json
import os
import shutil

import pytest

from tests.binaries import run_app
from tests.conftest import SMALL_DEV_ROWS, SMALL_LABELS, SMALL_STUDENT, SMALL_TEACHER, SST2

SUMMARY_KEYS = {
    "teacher_dev_acc", "student_dev_acc", "labels_only_dev_acc", "teacher_params", "student_params",
    "student_dir", "tflite_path", "mediapipe_path", "seconds",
}


def test_small_demo_reuses_the_teacher_runs_every_other_stage_and_summarises(small_run, small_sst2, tmp_path):
    out = str(tmp_path / "demo")
    # The teacher `apps.train_teacher` trained with the same data, seed and settings, with its logit cache.
    shutil.copytree(os.path.join(small_run, "teacher"), os.path.join(out, "teacher"))
    # One teacher and no copies: the small slice cannot afford the demo's three teachers and 134k texts.
    result = run_app("apps.demo", f"--dataset={small_sst2}", *SMALL_LABELS, *SMALL_TEACHER, *SMALL_STUDENT,
                     "--teacher_ensemble=1", "--augment_to=0", f"--out_dir={out}")
    assert "[teacher] reusing" in result.stdout
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert SUMMARY_KEYS <= set(summary)
    assert summary["dev_rows"] == SMALL_DEV_ROWS
    assert os.path.isfile(os.path.join(summary["student_dir"], "student.keras"))
    assert os.path.isfile(summary["tflite_path"]) and summary["tflite_agreement_with_keras"] >= 0.99
    # The Android model, run by MediaPipe's own TextClassifier.
    assert os.path.isfile(summary["mediapipe_path"]) and summary["mediapipe_bytes"] < 1_000_000
    assert summary["mediapipe_agreement_with_keras"] >= 0.98
    assert summary["teacher_params"] > 30 * summary["student_params"]
    assert "student, distilled" in result.stdout and summary["tflite_path"] in result.stdout
    assert summary["mediapipe_path"] in result.stdout


@pytest.mark.slow
def test_demo_distilled_student_beats_labels_only_by_five_points(tmp_path):
    """The issue's bar: SST-2, N=1000, the demo's defaults (three teachers, 31 minutes on 2 cores)."""
    out = str(tmp_path / "demo")
    run_app("apps.demo", f"--dataset={SST2}", f"--out_dir={out}")
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert summary["teacher_dev_acc"] > 0.78
    assert summary["student_dev_acc"] - summary["labels_only_dev_acc"] >= 0.05
    assert summary["seconds"] < 45 * 60
