"""The binaries on a small real SST-2 slice: each once in a subprocess, as a user runs it, else in process.

`small_run` (conftest) runs `apps.train_teacher` and `apps.distill` as subprocesses;
`apps.evaluate` and `apps.predict` run as subprocesses here; `export.tflite` has its
subprocess test in test_export.py.
"""

import json
import os

import keras
import numpy as np
import pytest

from absl import flags

from kdistill import ablations, config, data, io, pipeline, teacher as teacher_lib
from kdistill.apps import common
from kdistill.export import bulk
from tests.binaries import define_flags, one_line_error, run_app, run_in_process
from tests.conftest import (
    SMALL_DEV_ROWS, SMALL_LABELS, SMALL_NUM_LABELS, SMALL_SEED, SMALL_STUDENT, SMALL_TEACHER, SMALL_UNLABELLED, SST2,
)


def read(path):
    with open(path) as f:
        return json.load(f)


def test_train_teacher_writes_model_and_metrics(small_run):
    metrics = read(os.path.join(small_run, "teacher", "metrics.json"))
    assert os.path.isfile(os.path.join(small_run, "teacher", "teacher.keras"))
    assert metrics["num_labels"] == SMALL_NUM_LABELS
    assert metrics["teacher_params"] > 22_000_000
    assert metrics["teacher_dev_acc"] > 0.72  # 300 labels, 3 epochs: 79.0% measured; chance is 50%


def test_distill_writes_students_and_caches_teacher_logits(small_run, small_sst2):
    distilled = read(os.path.join(small_run, "student", "metrics.json"))
    baseline = read(os.path.join(small_run, "labels_only", "metrics.json"))
    assert distilled["num_unlabelled"] == SMALL_UNLABELLED
    assert distilled["student_params"] == baseline["student_params"]
    # Dev and labelled logits (float32), unlabelled and dev through the int8 labeller (beside them), were each
    # computed once and reused by the second run.
    logits_dir = os.path.join(small_run, "teacher", "logits")
    assert len(os.listdir(logits_dir)) == 5
    assert len([name for name in os.listdir(logits_dir) if name.startswith("labeller-")]) == 1  # --teacher_runtime=auto
    # The recorded agreement is the student's and the cached teacher's top class on dev.
    teacher = teacher_lib.load(os.path.join(small_run, "teacher"))
    dev_texts = data.load(small_sst2, SMALL_NUM_LABELS, seed=SMALL_SEED, max_unlabelled=0).dev_texts
    teacher_logits = teacher_lib.logits(teacher, dev_texts, cache_dir=os.path.join(small_run, "teacher"),
                                        verbose=False)
    assert len(os.listdir(logits_dir)) == 5  # served from the cache, not another entry
    student = io.load_model(os.path.join(small_run, "student", "student.keras"), "student")
    same = np.argmax(student.predict_texts(dev_texts), -1) == np.argmax(teacher_logits, -1)
    assert distilled["agreement_with_teacher"] == pytest.approx(float(np.mean(same)))


def test_evaluate_reports_all_three_models(small_run, small_sst2):
    result = run_app("apps.evaluate", f"--dataset={small_sst2}", *SMALL_LABELS, f"--out_dir={small_run}",
                     *SMALL_STUDENT)
    metrics = read(os.path.join(small_run, "metrics.json"))
    assert metrics["dev_rows"] == SMALL_DEV_ROWS
    # The same dev accuracies the training binaries recorded, recomputed from the saved models.
    assert metrics["teacher_dev_acc"] == read(os.path.join(small_run, "teacher", "metrics.json"))["teacher_dev_acc"]
    for name in ("student", "labels_only"):
        recorded = read(os.path.join(small_run, name, "metrics.json"))["student_dev_acc"]
        assert metrics[f"{name}_dev_acc"] == pytest.approx(recorded, abs=1e-9), name
    table = result.stdout.splitlines()
    assert any(line.startswith("labels_only") and f"{metrics['labels_only_dev_acc']:.2%}" in line for line in table)


def test_predict_from_arguments_and_stdin(small_run):
    model = os.path.join(small_run, "student")
    table = run_app("apps.predict", f"--model={model}", "a triumph", "a dreary mess").stdout.splitlines()
    assert [row.split("\t")[-1] for row in table] == ["a triumph", "a dreary mess"]
    lines = run_in_process("apps.predict", f"--model={model}", "--json", stdin="a triumph\n\nsmart and funny\n").stdout
    records = [json.loads(line) for line in lines.splitlines()]
    assert [r["text"] for r in records] == ["a triumph", "smart and funny"]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in records)
    assert all(r["label"] == max(r["probabilities"], key=r["probabilities"].get) for r in records)


def test_predict_streams_a_file_through_litert_with_the_keras_students_probabilities(small_run, tmp_path, monkeypatch):
    """Bulk prediction: SST-2's first 3,000 train sentences (a .tsv's text column, and as .txt lines with a blank
    one), in chunks of 1,000, through the length-free LiteRT student."""
    monkeypatch.setattr(bulk, "CHUNK_LINES", 1000)
    model = os.path.join(small_run, "student")
    rows = open(os.path.join(SST2, "train.tsv"), encoding="utf-8").read().splitlines()[:3001]
    (tmp_path / "in.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    texts = [text for _, text, _ in data.iter_rows(str(tmp_path / "in.tsv"))]
    assert len(texts) == 3000
    (tmp_path / "in.txt").write_text("\n".join(texts[:10] + [""] + texts[10:]) + "\n", encoding="utf-8")
    student = pipeline.load_student(model)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(student.predict_texts(texts)))
    result = run_in_process("apps.predict", f"--model={model}", f"--input_file={tmp_path / 'in.tsv'}",
                            f"--output_file={tmp_path / 'out.jsonl'}")
    assert "wrote 3,000 records" in result.stdout
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == texts
    names = student.class_names
    got = np.array([[r["probabilities"][name] for name in names] for r in records])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [r["label"] for r in records] == [names[i] for i in expected.argmax(-1)]
    # TSV by the output's extension: a header, the label, a probability per class and the text; the blank line skipped.
    run_in_process("apps.predict", f"--model={model}", f"--input_file={tmp_path / 'in.txt'}",
                   f"--output_file={tmp_path / 'out.tsv'}")
    lines = (tmp_path / "out.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "\t".join(["label", *(f"p_{name}" for name in names), "text"]) and len(lines) == 3001
    assert [line.split("\t", len(names) + 1)[-1] for line in lines[1:]] == texts
    assert [line.split("\t")[0] for line in lines[1:]] == [r["label"] for r in records]


def test_export_binary_writes_tflite_and_parity_report(small_run, small_sst2):
    out = os.path.join(small_run, "student.tflite")
    run_in_process("export.tflite", f"--student_dir={os.path.join(small_run, 'student')}", f"--out={out}",
                   f"--dataset={small_sst2}", "--both_inputs")
    for path in (out, out.replace(".tflite", "_ids.tflite")):  # the text-in model and the token-ids one
        report = read(path + ".report.json")
        assert report["rows"] == SMALL_DEV_ROWS and report["agreement"] >= 0.99, path


@pytest.mark.parametrize(
    "module, args, message",
    [
        ("apps.train_teacher", ["--dataset=/no/such/data"], "/no/such/data: no such file or folder"),
        ("apps.distill", [f"--dataset={SST2}", *SMALL_LABELS, "--out_dir=/no/such/run"], "no teacher model here"),
        ("apps.predict", ["--model=/no/such/student", "text"], "no student model here"),
        ("apps.distill", ["--out_dir=/no/such/run", "--transfer_shards=/no/such/shards", "--augment_to=20000"],
         "do not apply with --transfer_shards"),
        ("apps.distill", ["--out_dir=/no/such/run", "--transfer_shards=/no/such/shards", "--vocabulary_words=on"],
         "do not apply with --transfer_shards"),
        ("apps.label", ["--input=corpus.txt", "--strategy=mirrored", "--teacher_runtime=litert-int8"],
         "pass --teacher_runtime=tensorflow"),
    ],
)
def test_user_errors_are_one_line_without_traceback(module, args, message):
    assert message in one_line_error(run_in_process(module, *args, check=False))


def parsed_configs(module, *args):
    """The configs `module` builds from `args`; None for those it has no flags for."""
    define_flags(module)
    flags.FLAGS([module, *args])
    return ablations.Configs(common.teacher_config() if "teacher" in flags.FLAGS else None,
                             common.student_config() if "epochs" in flags.FLAGS else None,
                             common.distill_config() if "epochs" in flags.FLAGS else None)


def test_every_binary_runs_the_librarys_recipe_and_recipe_and_flags_change_it():
    library = ablations.Configs(*config.recipe("default"))
    assert library.teacher == config.TeacherConfig() and library.teacher.ensemble == 3
    for module in ("apps.demo", "apps.distill", "apps.benchmark"):
        parsed = parsed_configs(module)
        assert (parsed.student, parsed.distill) == (library.student, library.distill), module
    assert parsed_configs("apps.demo").teacher == parsed_configs("apps.train_teacher").teacher == library.teacher
    fast = parsed_configs("apps.demo", "--recipe=fast")
    assert (fast.teacher.ensemble, fast.distill.augment_to, fast.distill.fine_tune_epochs) == (1, 0, 0)
    assert fast.student == library.student
    # A flag given changes its field of the named recipe, and only that one.
    changed = parsed_configs("apps.demo", "--recipe=fast", "--teacher_ensemble=2", "--augment_to=60000")
    assert (changed.teacher.ensemble, changed.distill.augment_to, changed.distill.fine_tune_epochs) == (2, 60000, 0)
    small = parsed_configs("apps.distill", "--recipe=small", "--filters=64")
    assert (small.student.kernel_sizes, small.student.filters) == ((2, 3), 64)
    with pytest.raises(flags.IllegalFlagValueError):
        parsed_configs("apps.demo", "--recipe=slow")


def test_every_registered_recipe_and_ablation_names_real_fields():
    for name, changes in config.RECIPES.items():
        config.recipe(name)
        assert all(config.field_of(key) for key in changes), name
    with pytest.raises(ValueError, match="unknown config fields"):
        config.recipe("default", {"alpah": 0.5})
    fields = {key for overrides in ablations.ABLATIONS.values() for key in overrides} - {"task", "num_labels"}
    assert all(config.field_of(key) for key in fields)


@pytest.mark.slow  # two more MiniLM fine-tunes (about a minute)
def test_an_ensemble_teacher_trains_its_members_side_by_side_and_distils_as_one(small_sst2, tmp_path):
    flags = [f"--dataset={small_sst2}", *SMALL_LABELS, f"--out_dir={tmp_path}"]
    result = run_in_process("apps.train_teacher", *flags, *SMALL_TEACHER, "--teacher_ensemble=2")
    assert "[teacher] fine-tuning members 1, 2 side by side" in result.stdout
    teacher_dir = tmp_path / "teacher"
    metrics = read(teacher_dir / "metrics.json")
    members = [read(teacher_dir / f"member-{k}" / "metrics.json") for k in range(2)]
    assert metrics["teacher_member_dev_acc"] == [m["teacher_dev_acc"] for m in members]
    assert members[0]["run_key"] != members[1]["run_key"]  # the same labels, another seed
    assert metrics["teacher_ensemble"] == 2 and metrics["teacher_params"] == sum(m["teacher_params"] for m in members)
    ensemble = teacher_lib.load(str(teacher_dir))
    assert isinstance(ensemble, teacher_lib.TeacherEnsemble) and len(ensemble.members) == 2
    dev = data.load(small_sst2, SMALL_NUM_LABELS, seed=SMALL_SEED, max_unlabelled=0)
    logits = teacher_lib.logits(ensemble, dev.dev_texts, verbose=False)
    assert metrics["teacher_dev_acc"] == pytest.approx(float(np.mean(np.argmax(logits, -1) == dev.dev_labels)))
    # apps.distill reads the folder as one teacher: the student's targets and agreement are the ensemble's.
    run_in_process("apps.distill", *flags, *SMALL_STUDENT)
    student = io.load_model(str(tmp_path / "student" / "student.keras"), "student")
    same = np.argmax(student.predict_texts(dev.dev_texts), -1) == np.argmax(logits, -1)
    assert read(tmp_path / "student" / "metrics.json")["agreement_with_teacher"] == pytest.approx(float(np.mean(same)))


@pytest.mark.parametrize("module", ["apps.demo", "apps.train_teacher", "apps.distill", "apps.label", "apps.evaluate",
                                    "apps.predict", "apps.benchmark", "export.tflite"])
def test_help_lists_every_flag_the_binary_defines(module, monkeypatch):
    """absl's --help shows the main module's flags; most are defined in apps/common.py and must show too."""
    from kdistill import cli

    binary = define_flags(module)
    registry = flags.FLAGS
    ours = [flag.name for defining, defined in registry.flags_by_module_dict().items()
            if defining.startswith(("kdistill", "apps", "export")) for flag in defined]
    for name in set(ours):  # as a fresh process has them: not defined yet
        delattr(registry, name)
    monkeypatch.setattr("sys.argv", [f"/venv/bin/kdistill-{module}"])
    cli.define_flags_of_main(binary.define_flags)
    shown = registry.main_module_help()
    missing = [name for name in ours if f"--{name}:" not in shown and f"--[no]{name}:" not in shown]
    assert ours and not missing, missing
    if module == "apps.demo":
        assert all(f"--{name}" in shown for name in ("num_labels", "teacher_ensemble", "augment_to", "kernel_sizes"))
