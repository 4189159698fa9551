"""The binaries, run as a user runs them: subprocesses on a small real SST-2 slice."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import SST2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_RUN = [
    f"--dataset={SST2}", "--num_labels=120", "--max_unlabelled=600", "--seed=1",
]
SMALL_TEACHER = ["--teacher_epochs=2", "--teacher_min_steps=0", "--max_seq_length=64"]
SMALL_STUDENT = ["--epochs=2", "--vocabulary_size=2000", "--embedding_dim=16", "--filters=16"]


def run_app(module, *args, stdin=None, check=True):
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, input=stdin, capture_output=True, text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{module} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    common = SMALL_RUN + [f"--out_dir={out}"]
    run_app("apps.train_teacher", *common, *SMALL_TEACHER)
    run_app("apps.distill", *common, *SMALL_STUDENT)
    run_app("apps.distill", *common, *SMALL_STUDENT, "--labels_only")
    return out


def read(path):
    with open(path) as f:
        return json.load(f)


def test_train_teacher_writes_model_and_metrics(run_dir):
    metrics = read(os.path.join(run_dir, "teacher", "metrics.json"))
    assert os.path.isfile(os.path.join(run_dir, "teacher", "teacher.keras"))
    assert metrics["num_labels"] == 120
    assert metrics["teacher_params"] > 22_000_000
    assert 0.5 < metrics["teacher_dev_acc"] <= 1.0


def test_distill_writes_students_and_caches_teacher_logits(run_dir):
    distilled = read(os.path.join(run_dir, "student", "metrics.json"))
    baseline = read(os.path.join(run_dir, "labels_only", "metrics.json"))
    assert distilled["num_unlabelled"] == 600
    assert distilled["student_params"] == baseline["student_params"]
    assert 0.0 <= distilled["agreement_with_teacher"] <= 1.0
    # Dev, labelled and unlabelled logits were each computed once and reused by the second run.
    assert len(os.listdir(os.path.join(run_dir, "teacher", "logits"))) == 3


def test_evaluate_reports_all_three_models(run_dir):
    result = run_app("apps.evaluate", *SMALL_RUN, f"--out_dir={run_dir}", *SMALL_STUDENT)
    metrics = read(os.path.join(run_dir, "metrics.json"))
    for key in ("teacher_dev_acc", "student_dev_acc", "labels_only_dev_acc", "student_agreement"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["dev_rows"] == 872
    table = result.stdout.splitlines()
    assert any(line.startswith("labels_only") and f"{metrics['labels_only_dev_acc']:.2%}" in line for line in table)


def test_predict_from_arguments_and_stdin(run_dir):
    model = os.path.join(run_dir, "student")
    table = run_app("apps.predict", f"--model={model}", "a triumph", "a dreary mess").stdout.splitlines()
    assert len(table) == 2 and table[0].split("\t")[0] in ("0", "1")
    lines = run_app("apps.predict", f"--model={model}", "--json", stdin="a triumph\n\nsmart and funny\n").stdout
    records = [json.loads(line) for line in lines.splitlines()]
    assert [r["text"] for r in records] == ["a triumph", "smart and funny"]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in records)


def test_export_binary_writes_tflite_and_parity_report(run_dir):
    out = os.path.join(run_dir, "student.tflite")
    run_app("export.tflite", f"--student_dir={os.path.join(run_dir, 'student')}", f"--out={out}",
            f"--dataset={SST2}")
    report = read(out + ".report.json")
    assert report["rows"] == 872 and report["agreement"] >= 0.99


@pytest.mark.parametrize(
    "module, args, message",
    [
        ("apps.train_teacher", ["--dataset=/no/such/data"], "/no/such/data: no such file or folder"),
        ("apps.distill", SMALL_RUN + ["--out_dir=/no/such/run"], "no teacher model here"),
        ("apps.predict", ["--model=/no/such/student", "text"], "no student model here"),
        ("apps.distill", ["--out_dir=/no/such/run", "--transfer_shards=/no/such/shards", "--augment_to=20000"],
         "do not apply with --transfer_shards"),
    ],
)
def test_user_errors_are_one_line_without_traceback(module, args, message):
    result = run_app(module, *args, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
