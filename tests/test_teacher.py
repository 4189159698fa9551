import dataclasses
import os
import weakref

import keras
import numpy as np
import pytest

from kdistill import data, teacher as teacher_lib
from kdistill.errors import KdistillError
from kdistill.tokenizer import StudentTokenizer
from tests.conftest import SHARED_DATA, accuracy


def test_fine_tuned_teacher_learns_sst2(teacher, transfer_logits, sst2_splits):
    # 300 labels, 3 epochs of MiniLM-L6: well above the 50% of chance on real dev sentences.
    assert accuracy(transfer_logits["dev"], sst2_splits.dev_labels) > 0.72


def test_loaded_teacher_is_frozen(teacher):
    assert not teacher.trainable
    assert teacher.trainable_weights == []
    assert teacher.count_params() > 22_000_000


def test_length_bucketing_matches_full_padding(teacher, sst2_splits):
    texts = list(sst2_splits.dev_texts[:40])
    bucketed = teacher_lib.logits(teacher, texts, verbose=False)
    full = teacher(teacher.preprocessor(keras.ops.convert_to_tensor(texts)), training=False)
    np.testing.assert_allclose(bucketed, keras.ops.convert_to_numpy(full), atol=2e-4)


def test_fast_tokenization_gives_the_preprocessors_own_features_and_steps_aside_where_it_would_not(
    teacher, sst2_splits, monkeypatch
):
    # SUBJ's sentences carry "…" and accented words, which TF Text's fast ops split otherwise: those rows must
    # still get the keras-hub preprocessor's ids, and the ASCII ones the same ids through the fast path.
    subj = data.load(os.path.join(SHARED_DATA, "subj"), num_labels=100, seed=0)
    texts = list(subj.dev_texts[:600]) + list(sst2_splits.dev_texts[:100]) + ["", "a…b", "zero\u200bwidth", "x" * 130]
    assert teacher_lib._fast_tokenizer(teacher) is not None
    assert 0 < sum(teacher_lib._PLAIN_TEXT.fullmatch(t) is None for t in texts) < len(texts) // 10
    expected = teacher_lib._preprocessor_features(teacher, texts)
    for key, value in teacher_lib.tokenize(teacher, texts).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)

    # Fast ops that do not reproduce the teacher's tokenizer (here: they keep case, the teacher lower-cases) are
    # never used.
    monkeypatch.setattr(teacher_lib, "_FAST_TOKENIZERS", weakref.WeakKeyDictionary())
    monkeypatch.setattr(teacher_lib, "StudentTokenizer",
                        lambda vocabulary, lowercase: StudentTokenizer(vocabulary, lowercase=False))
    assert teacher_lib._fast_tokenizer(teacher) is None


def test_logits_are_cached_by_content(teacher, teacher_dir, sst2_splits, monkeypatch):
    texts = list(sst2_splits.dev_texts[:16])
    first = teacher_lib.logits(teacher, texts, cache_dir=teacher_dir, verbose=False)
    key = teacher_lib.fingerprint(teacher, texts)
    assert os.path.exists(os.path.join(teacher_dir, "logits", key + ".npy"))

    def must_not_run(*args, **kwargs):
        raise AssertionError("the teacher ran although its logits were cached")

    monkeypatch.setattr(teacher, "predict_on_batch", must_not_run)
    np.testing.assert_array_equal(teacher_lib.logits(teacher, texts, cache_dir=teacher_dir), first)
    assert teacher_lib.fingerprint(teacher, texts[:-1]) != key


def test_fingerprint_follows_the_weights(teacher_dir, sst2_splits):
    model = teacher_lib.load(teacher_dir)
    texts = list(sst2_splits.dev_texts[:4])
    before = teacher_lib.fingerprint(model, texts)
    dense = model.output_dense
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias + 1e-3])
    assert teacher_lib.fingerprint(model, texts) != before


def test_teacher_round_trips_through_keras_file(teacher, teacher_dir, sst2_splits, tmp_path):
    texts = list(sst2_splits.dev_texts[:8])
    path = teacher_lib.save(teacher, str(tmp_path))
    again = teacher_lib.load(path)
    np.testing.assert_allclose(
        teacher_lib.logits(again, texts, verbose=False), teacher_lib.logits(teacher, texts, verbose=False), atol=1e-5
    )


def test_int8_litert_labeller_agrees_with_the_float32_teacher_and_caches_apart(teacher, teacher_dir, transfer_logits,
                                                                             sst2_splits):
    """The CPU's labeller: the teacher's dynamic-range int8 LiteRT form, on 300 real SST-2 dev sentences."""
    assert teacher_lib.labelling_runtime() == teacher_lib.LITERT_INT8  # this machine has no GPU
    assert teacher_lib.labelling_runtime("tensorflow") == teacher_lib.TENSORFLOW
    with pytest.raises(KdistillError, match="unknown teacher runtime 'int4'"):
        teacher_lib.labelling_runtime("int4")
    texts = list(sst2_splits.dev_texts)
    fast = teacher_lib.logits(teacher, texts, cache_dir=teacher_dir, verbose=False, runtime=teacher_lib.LITERT_INT8)
    exact = transfer_logits["dev"]
    assert np.mean(fast.argmax(-1) == exact.argmax(-1)) >= 0.98
    assert 0 < np.abs(fast - exact).max() < 1.0  # int8: close, not bit-equal
    # Cached under its own key, beside the int8 model it was written with; the float32 logits are untouched.
    key = teacher_lib.fingerprint(teacher, texts, teacher_lib.LITERT_INT8)
    assert key != teacher_lib.fingerprint(teacher, texts)
    np.testing.assert_array_equal(np.load(os.path.join(teacher_dir, "logits", key + ".npy")), fast)
    assert len([f for f in os.listdir(os.path.join(teacher_dir, "logits")) if f.endswith(".tflite")]) == 1


def test_a_teacher_without_a_cache_folder_converts_its_labeller_once_and_leaves_nothing_behind(teacher):
    import subprocess
    import sys

    # Same weights, same file: a second call reuses the model instead of converting it again.
    path = teacher_lib._labeller_path(teacher, None)
    assert path == teacher_lib._labeller_path(teacher, None)
    script = ("from kdistill import teacher; import os; folder = teacher._scratch_folder(); "
              "open(os.path.join(folder, 'labeller-x.tflite'), 'w').write('x'); print(folder)")
    done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    folder = done.stdout.split()[-1]
    assert os.path.basename(folder).startswith("kdistill-labeller-")
    assert not os.path.exists(folder)  # gone with its process


def test_auto_labelling_sets_a_labeller_aside_that_agrees_too_rarely_on_dev(teacher, teacher_dir, transfer_logits,
                                                                           sst2_splits, monkeypatch):
    from kdistill import pipeline

    splits = dataclasses.replace(sst2_splits, unlabelled_texts=sst2_splits.unlabelled_texts[:64])
    kept = pipeline.label(teacher, teacher_dir, splits)  # int8 agrees on 98% or more of these 300 dev rows
    assert kept["labelling"]["runtime"] == teacher_lib.LITERT_INT8
    monkeypatch.setattr(teacher_lib, "MIN_LABELLER_AGREEMENT", 1.01)  # no labeller can agree that often
    targets = pipeline.label(teacher, teacher_dir, splits)
    assert targets["labelling"]["runtime"] == teacher_lib.TENSORFLOW
    assert targets["labelling"]["set_aside"] == teacher_lib.LITERT_INT8
    assert targets["labelling"]["dev_agreement_with_teacher"] == kept["labelling"]["dev_agreement_with_teacher"]
    np.testing.assert_allclose(targets["unlabelled"], transfer_logits["unlabelled"][:64], atol=2e-4)  # float32's
    # Asked for by name, the runtime is used whatever it measures.
    assert pipeline.label(teacher, teacher_dir, splits, "litert-int8")["labelling"]["runtime"] == teacher_lib.LITERT_INT8
