"""Bad input, damaged files, interrupted runs and repeatability (issue 5, docs/RELIABILITY.md).

Each case goes through the library API here; a representative subset also goes
through the binaries' entry functions (`run_in_process`), where a user meets it.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from kdistill import checkpoint, data, io, pipeline, student as student_lib, teacher as teacher_lib, training
from kdistill.config import StudentConfig
from kdistill.errors import KdistillError
from tests.conftest import AG_NEWS, SST2
from tests.binaries import REPO, one_line_error, run_in_process

LONG_TEXT = ("a gripping , funny film " * 4200)[:100_000]
TINY_STUDENT = StudentConfig(vocabulary_size=2000, embedding_dim=16, filters=16)


def sst2_rows(n, ascii_only=False):
    with open(os.path.join(SST2, "train.tsv"), encoding="utf-8") as f:
        next(f)
        rows = [line.rstrip("\n").split("\t") for line in f]
    rows = [(label, text) for label, text in rows if text.isascii() or not ascii_only]
    return rows[:n]


def write_tsv(path, rows, header="label\tsentence", encoding="utf-8"):
    lines = ([header] if header else []) + [f"{label}\t{text}" for label, text in rows]
    with open(path, "w", encoding=encoding) as f:
        f.write("\n".join(lines) + "\n")


def dataset_folder(folder, train, dev, classes=None, encoding="utf-8"):
    os.makedirs(folder, exist_ok=True)
    write_tsv(os.path.join(folder, "train.tsv"), train, encoding=encoding)
    write_tsv(os.path.join(folder, "dev.tsv"), dev, encoding=encoding)
    if classes:
        with open(os.path.join(folder, "classes.txt"), "w") as f:
            f.write("\n".join(classes) + "\n")
    return str(folder)


# --- bad data ------------------------------------------------------------------


def test_empty_file_and_header_only(tmp_path):
    dev = sst2_rows(10)
    empty = dataset_folder(tmp_path / "empty", [], dev)
    open(os.path.join(empty, "train.tsv"), "w").close()
    with pytest.raises(KdistillError, match=r"train.tsv: the file is empty; give a file"):
        data.load(empty, num_labels=2)
    header_only = dataset_folder(tmp_path / "header", [], dev)
    with pytest.raises(KdistillError, match=r"train.tsv: only a header, no rows; give a file"):
        data.load(header_only, num_labels=2)


def test_empty_and_blank_texts_are_dropped_and_counted(tmp_path):
    rows = sst2_rows(40)
    train = rows[:30] + [("1", ""), ("0", "   "), ("1", "\t ")]
    folder = dataset_folder(tmp_path / "blank", train, rows[30:] + [("0", " ")])
    splits = data.load(folder, num_labels=10)
    assert splits.empty_texts_dropped == 4
    assert len(splits.labelled_texts) + len(splits.unlabelled_texts) == 30
    assert all(t.strip() for t in np.concatenate([splits.labelled_texts, splits.unlabelled_texts, splits.dev_texts]))
    assert "4 rows with empty text dropped" in splits.describe()
    write_tsv(os.path.join(folder, "train.tsv"), [("1", ""), ("0", " ")])
    with pytest.raises(KdistillError, match="every row's text is empty"):
        data.load(folder, num_labels=2)


def test_latin1_file_names_byte_and_row_and_reads_with_encoding(tmp_path):
    rows = sst2_rows(40, ascii_only=True)
    rows[20] = ("1", "un café délicieux , a charming film")
    folder = dataset_folder(tmp_path / "latin1", rows[:30], rows[30:], encoding="latin-1")
    raw = open(os.path.join(folder, "train.tsv"), "rb").read()
    offset = raw.index("é".encode("latin-1"))
    with pytest.raises(KdistillError) as error:
        data.load(folder, num_labels=10)
    assert f"train.tsv: byte {offset} (row 22) is not valid utf-8; re-save the file as UTF-8" in str(error.value)
    assert "--encoding=latin-1" in str(error.value)
    with pytest.raises(KdistillError, match=rf"byte {offset} \(row 22\) is not valid utf-8"):
        data.read_lines(os.path.join(folder, "train.tsv"))  # apps.predict --input_file
    splits = data.load(folder, num_labels=10, encoding="latin-1")
    assert "un café délicieux , a charming film" in set(splits.labelled_texts) | set(splits.unlabelled_texts)
    with pytest.raises(KdistillError, match="--encoding=klingon: unknown encoding"):
        data.load(folder, num_labels=10, encoding="klingon")


def test_utf8_byte_order_mark_is_not_part_of_the_header(tmp_path):
    rows = sst2_rows(20)
    folder = dataset_folder(tmp_path / "bom", rows[:15], rows[15:], encoding="utf-8-sig")
    assert data.load(folder, num_labels=4).num_classes == 2


def test_long_text_is_read_and_counted_as_truncated(tmp_path, teacher):
    rows = sst2_rows(40)
    # 300,000 characters: beyond csv's default 128 KiB field limit too.
    folder = dataset_folder(tmp_path / "long", rows[:29] + [("1", LONG_TEXT * 3)], rows[30:])
    splits = data.load(folder, num_labels=10)
    texts = np.concatenate([splits.labelled_texts, splits.unlabelled_texts])
    assert max(len(t) for t in texts) == 300_000
    student = training.build_student(teacher, splits, TINY_STUDENT)
    assert student.tokenizer.count_truncated(texts) == 1
    assert student.predict_texts([LONG_TEXT]).shape == (1, 2)
    assert teacher_lib.truncated_texts(teacher, texts) == 1
    assert np.isfinite(teacher_lib.logits(teacher, [LONG_TEXT], verbose=False)).all()


def test_unknown_label_names_file_and_row_in_jsonl(tmp_path):
    lines = [{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}, {"text": "meh", "label": "so-so"}]
    (tmp_path / "classes.txt").write_text("neg\npos\n")
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (tmp_path / "dev.jsonl").write_text(json.dumps(lines[0]) + "\n")
    with pytest.raises(KdistillError, match=r"train.jsonl:3: label 'so-so' is not one of the classes"):
        data.load(str(tmp_path), num_labels=2)


def test_class_of_the_class_list_without_train_rows(tmp_path):
    rows = sst2_rows(40)
    folder = dataset_folder(tmp_path / "missing", rows[:30], rows[30:], classes=["0", "1", "2"])
    with pytest.raises(KdistillError, match=r"train.tsv: class \['2'\] of the class list .* has no row in train"):
        data.load(folder, num_labels=10)


def test_num_labels_larger_than_the_pool_takes_every_row_and_fewer_than_the_classes_is_refused():
    every = data.load(AG_NEWS, num_labels=5000)
    assert len(every.labelled_texts) == 4000 and len(every.unlabelled_texts) == 0 and every.labels_asked == 5000
    assert "4000 labelled (all of train: --num_labels=5000 asked for more than it has)" in every.describe()
    assert np.array_equal(data.load(AG_NEWS, num_labels=None).labelled_labels, every.labelled_labels)
    with pytest.raises(KdistillError, match="--num_labels=3 is fewer than the 4 classes"):
        data.load(AG_NEWS, num_labels=3)


def test_missing_and_unreadable_paths(tmp_path):
    with pytest.raises(KdistillError, match="no such file or folder"):
        data.load(str(tmp_path / "nothing"), num_labels=10)
    not_a_file = tmp_path / "extra.txt"
    not_a_file.mkdir()  # tests run as root, which reads any file: a folder is what stays unreadable
    with pytest.raises(KdistillError, match=r"extra.txt: cannot read \(Is a directory\); check the path"):
        data.load(AG_NEWS, num_labels=100, unlabelled=str(not_a_file))


def test_same_seed_same_sample():
    a, b = (data.load(SST2, num_labels=1000, seed=3) for _ in range(2))
    assert list(a.labelled_texts) == list(b.labelled_texts)
    assert np.array_equal(a.labelled_labels, b.labelled_labels)


# --- models and caches ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_student_path(tmp_path_factory):
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "film", "good", "bad"]
    model = student_lib.Student(vocabulary, 2, embedding_dim=4, filters=4, kernel_sizes=(2,), class_names=["n", "p"])
    path = str(tmp_path_factory.mktemp("student") / "student.keras")
    io.atomic_save_model(model, path)
    return path


def damaged_copies(path, folder):
    """The file cut to half its bytes, and random bytes of the same size."""
    raw = open(path, "rb").read()
    stem, ext = os.path.splitext(os.path.basename(path))
    half, noise = os.path.join(folder, f"{stem}_half{ext}"), os.path.join(folder, f"{stem}_noise{ext}")
    open(half, "wb").write(raw[: len(raw) // 2])
    open(noise, "wb").write(np.random.default_rng(0).bytes(len(raw)))
    return half, noise


def test_damaged_keras_files_are_one_line_errors(tiny_student_path, tmp_path):
    assert io.load_model(tiny_student_path, "student").num_classes == 2
    for path in damaged_copies(tiny_student_path, tmp_path):
        with pytest.raises(KdistillError, match=r"not a .keras archive \(truncated or another kind of file\)"):
            io.load_model(path, "student")


def test_damaged_tflite_files_are_one_line_errors(tiny_student_path, tmp_path):
    from kdistill.export import tflite
    from kdistill.export.runtime import TFLiteClassifier

    path = tflite.export_student(io.load_model(tiny_student_path, "student"), str(tmp_path / "s.tflite"), "float32")
    assert TFLiteClassifier(path).predict_proba(["a good film"]).shape == (1, 2)
    half, noise = damaged_copies(path, tmp_path)
    with pytest.raises(KdistillError, match=r"s_half.tflite: not a loadable .tflite model .*; export it again"):
        TFLiteClassifier(half)
    with pytest.raises(KdistillError, match=r"s_noise.tflite: not a .tflite model \(no TFL3 identifier\)"):
        TFLiteClassifier(noise)


def lambda_model_path(folder):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2, name="doubler")(inputs))
    path = os.path.join(folder, "lambda.keras")
    model.save(path)
    return path


def test_keras_file_with_a_lambda_layer_is_refused(tmp_path):
    with pytest.raises(KdistillError, match=r"lambda.keras: refused: the student holds Lambda layers \['doubler'\]"):
        io.load_model(lambda_model_path(str(tmp_path)), "student")


def test_no_pickle_and_no_lambda_layers_in_the_code():
    for folder in ("kdistill", "apps", "export"):
        for name in os.listdir(os.path.join(REPO, folder)):
            if name.endswith(".py"):
                source = open(os.path.join(REPO, folder, name), encoding="utf-8").read()
                assert "import pickle" not in source and "layers.Lambda" not in source, name
                assert "allow_pickle=True" not in source, name


def test_class_count_of_teacher_and_student_must_match_the_data(teacher_dir, tiny_student_path):
    four_classes = data.load(AG_NEWS, num_labels=100)
    with pytest.raises(KdistillError, match=r"the teacher has 2 classes but the data has 4"):
        pipeline.load_teacher(teacher_dir, four_classes)
    with pytest.raises(KdistillError, match=r"student.keras: the student has 2 classes but the data has 4"):
        pipeline.load_student(tiny_student_path, four_classes)


def test_damaged_logit_caches_are_recomputed_with_a_warning(teacher, sst2_splits, tmp_path, caplog):
    texts = list(sst2_splits.dev_texts[:12])
    cache = str(tmp_path)
    good = teacher_lib.logits(teacher, texts, cache_dir=cache, verbose=False)
    path = os.path.join(cache, "logits", teacher_lib.fingerprint(teacher, texts) + ".npy")
    damages = {
        "hold NaN or infinite values": lambda: np.save(path, np.where(np.eye(12, 2) > 0, np.nan, good)),
        "cannot be read": lambda: open(path, "wb").write(open(path, "rb").read()[:40]),
        "have shape (3, 2)": lambda: np.save(path, good[:3]),
    }
    for problem, damage in damages.items():
        damage()
        caplog.clear()
        again = teacher_lib.logits(teacher, texts, cache_dir=cache, verbose=False)
        np.testing.assert_allclose(again, good, atol=1e-5)
        assert any(problem in r.getMessage() and "recomputing" in r.getMessage() for r in caplog.records), problem
        np.testing.assert_array_equal(np.load(path), again)  # and the repaired cache was written back


def test_teacher_with_non_finite_logits_is_an_error(teacher_dir):
    damaged = teacher_lib.load(teacher_dir)  # a copy: the shared teacher stays sound
    bias = damaged.output_dense.bias
    bias.assign(np.full(bias.shape, np.inf, np.float32))  # weights damaged the way a diverged run leaves them
    with pytest.raises(KdistillError, match="the teacher gives NaN or infinite logits for 3 of 3 texts"):
        teacher_lib.logits(damaged, ["a", "b", "c"], verbose=False)


def test_cache_key_follows_the_preprocessing(teacher):
    texts = ["a gripping film", "dull"]
    key = teacher_lib.fingerprint(teacher, texts)
    preprocessor = teacher.preprocessor
    length = preprocessor.sequence_length
    try:
        preprocessor.sequence_length = length // 2
        assert teacher_lib.fingerprint(teacher, texts) != key
    finally:
        preprocessor.sequence_length = length
    assert teacher_lib.fingerprint(teacher, texts) == key


# --- atomic writes ---------------------------------------------------------------


def test_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = str(tmp_path / "metrics.json")
    io.write_json({"run": 1}, path)
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_path(path) as tmp:
            open(tmp, "w").write('{"run": 2, "half')
            raise KeyboardInterrupt  # killed half way through
    assert io.read_json(path) == {"run": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_model_save_that_fails_keeps_the_previous_model(tiny_student_path, tmp_path, monkeypatch):
    path = str(tmp_path / "student.keras")
    shutil.copy(tiny_student_path, path)
    model = io.load_model(path, "student")

    def save_half_then_die(self, filepath, *args, **kwargs):
        open(filepath, "wb").write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(type(model), "save", save_half_then_die)
    with pytest.raises(OSError):
        io.atomic_save_model(model, path)
    assert io.load_model(path, "student").num_classes == 2
    assert os.listdir(tmp_path) == ["student.keras"]


# --- through the binaries ------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, tiny_student_path, teacher_dir):
    """Broken datasets and model files, by name, for the binaries to meet."""
    from kdistill.export import tflite

    root = tmp_path_factory.mktemp("bad")
    rows = sst2_rows(60, ascii_only=True)
    latin1 = rows[:40]
    latin1[20] = ("1", "un café délicieux")
    paths = {
        "sst2": SST2,
        "ag_news": AG_NEWS,
        "teacher_dir": teacher_dir,
        "out": str(root / "out"),
        "latin1": dataset_folder(root / "latin1", latin1, rows[40:], encoding="latin-1"),
        "empty": dataset_folder(root / "empty", [], rows[40:]),
        "unknown_label": dataset_folder(
            root / "unknown_label", rows[:2] + [("maybe", "ok")] + rows[2:40], rows[40:], classes=["0", "1"]
        ),
        "missing_class": dataset_folder(root / "missing_class", rows[:40], rows[40:], classes=["0", "1", "2"]),
        "lambda": lambda_model_path(str(root)),
    }
    open(os.path.join(paths["empty"], "train.tsv"), "w").close()
    student = io.load_model(tiny_student_path, "student")
    tflite_path = tflite.export_student(student, str(root / "student.tflite"), "float32")
    paths["keras_half"], _ = damaged_copies(tiny_student_path, str(root))
    paths["tflite_half"], _ = damaged_copies(tflite_path, str(root))
    return paths


@pytest.mark.parametrize(
    "module, args, message",
    [
        ("apps.train_teacher", ["--dataset={latin1}"], r"train.tsv: byte \d+ \(row 22\) is not valid utf-8; .*--encoding=latin-1"),
        ("apps.distill", ["--dataset={empty}", "--out_dir={out}"], "train.tsv: the file is empty"),
        ("apps.train_teacher", ["--dataset={unknown_label}"], r"train.tsv:4: label 'maybe' is not one of the classes"),
        ("apps.train_teacher", ["--dataset={sst2}", "--num_labels=1"], "--num_labels=1 is fewer than the 2 classes"),
        ("apps.distill", ["--dataset={missing_class}", "--out_dir={out}"], r"class \['2'\] of the class list"),
        ("apps.distill", ["--dataset={ag_news}", "--teacher_dir={teacher_dir}", "--num_labels=100"],
         "the teacher has 2 classes but the data has 4"),
        ("apps.predict", ["--model={keras_half}", "a film"], r"student_half.keras: not a .keras archive"),
        ("apps.predict", ["--model={tflite_half}", "a film"], r"student_half.tflite: not a loadable .tflite model"),
        ("apps.predict", ["--model={lambda}", "a film"], r"lambda.keras: refused: the student holds Lambda layers"),
    ],
    ids=["latin1", "empty_file", "unknown_label", "too_few_labels", "class_without_rows",
         "teacher_classes", "truncated_keras", "truncated_tflite", "lambda_layer"],
)
def test_bad_input_through_the_binaries(bad_inputs, module, args, message):
    error = one_line_error(run_in_process(module, *[a.format(**bad_inputs) for a in args], check=False))
    assert __import__("re").search(message, error), error


@pytest.fixture(scope="module")
def teacher_copy(labeller_teacher_dir, transfer_logits, tmp_path_factory):
    """The session's teacher and its logit cache (int8 labeller included) in a folder of their own, for runs that
    add to the cache."""
    teacher_dir = labeller_teacher_dir
    folder = str(tmp_path_factory.mktemp("teacher_copy"))
    shutil.copy(os.path.join(teacher_dir, teacher_lib.MODEL_FILE), folder)
    shutil.copytree(os.path.join(teacher_dir, teacher_lib.LOGITS_DIR), os.path.join(folder, teacher_lib.LOGITS_DIR))
    return folder


def test_messy_latin1_data_through_distill(teacher, teacher_copy, tmp_path, caplog):
    """Latin-1 text, blank texts, a 100,000-character text and a NaN-poisoned cache, in one real run."""
    rows = sst2_rows(300, ascii_only=True)
    train = rows[:200] + [("1", "un café délicieux , a charming film"), ("0", ""), ("1", "   "), ("1", LONG_TEXT)]
    folder = dataset_folder(tmp_path / "messy", train, rows[200:], encoding="latin-1")
    flags = [f"--dataset={folder}", "--encoding=latin-1", "--num_labels=20", "--seed=0", "--recipe=fast",
             f"--teacher_dir={teacher_copy}", f"--out_dir={tmp_path / 'run'}", "--epochs=1",
             "--vocabulary_size=2000", "--embedding_dim=16", "--filters=16"]
    splits = data.load(folder, num_labels=20, seed=0, encoding="latin-1")
    cache = os.path.join(teacher_copy, teacher_lib.LOGITS_DIR, teacher_lib.fingerprint(teacher, splits.dev_texts) + ".npy")
    np.save(cache, np.full((len(splits.dev_texts), 2), np.nan, np.float32))

    result = run_in_process("apps.distill", *flags)
    assert any("cached teacher logits hold NaN or infinite values; recomputing them" in r.getMessage()
               for r in caplog.records)
    assert np.isfinite(np.load(cache)).all()
    assert "2 rows with empty text dropped" in result.stdout
    metrics = io.read_json(os.path.join(tmp_path, "run", "student", "metrics.json"))
    assert metrics["empty_texts_dropped"] == 2
    assert metrics["truncated_texts"] >= 1  # the 100,000-character text, at least
    assert metrics["num_labels"] + metrics["num_unlabelled"] == 202


@pytest.mark.slow  # two processes (about 30 s); test_distillation_resumes_after_the_last_finished_epoch in process
def test_sigkill_during_distill_then_the_same_command_resumes(teacher_copy, tmp_path):
    out = str(tmp_path / "run")
    command = [sys.executable, "-m", "apps.distill", f"--dataset={SST2}", "--num_labels=300", "--seed=0",
               "--max_unlabelled=3000", f"--teacher_dir={teacher_copy}", f"--out_dir={out}", "--epochs=6",
               "--batch_size=64", "--vocabulary_size=2000", "--embedding_dim=32", "--filters=32"]
    state = os.path.join(out, "student", pipeline.BACKUP_DIR, checkpoint.STATE_FILE)
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 300
            while not os.path.exists(state) and first.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            assert os.path.exists(state), open(tmp_path / "first.log").read()[-3000:]
            first.send_signal(signal.SIGKILL)  # mid-way through epoch 2 (or a later one)
        finally:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL
    assert not os.path.exists(os.path.join(out, "student", pipeline.STUDENT_FILE))

    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = [line for line in result.stdout.splitlines() if line.startswith("[resume]")]
    assert len(resumed) == 1 and "distillation resumes after epoch" in resumed[0], result.stdout[-3000:]
    epoch = int(resumed[0].split("after epoch ")[1].split(",")[0])
    assert 1 <= epoch < 6
    assert f"Epoch {epoch + 1}/6" in result.stdout and "Epoch 1/6" not in result.stdout
    metrics = io.read_json(os.path.join(out, "student", "metrics.json"))
    assert metrics["student_dev_acc"] > 0.7
    assert not os.path.exists(os.path.dirname(state))
