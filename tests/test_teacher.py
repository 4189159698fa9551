import os

import keras
import numpy as np
import pytest

from kdistill import teacher as teacher_lib
from kdistill.config import TeacherConfig
from kdistill.teacher_model import TeacherEnsemble
from tests.conftest import accuracy


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


def test_sentence_vectors_are_the_masked_mean_of_the_last_token_vectors(teacher, teacher_dir, sst2_splits):
    texts = list(sst2_splits.dev_texts[:24])
    vectors = teacher_lib.sentence_vectors(teacher, texts, cache_dir=teacher_dir, verbose=False)
    inputs = teacher.preprocessor(keras.ops.convert_to_tensor(texts))
    tokens = keras.ops.convert_to_numpy(teacher.backbone(inputs)["sequence_output"])
    mask = keras.ops.convert_to_numpy(inputs["padding_mask"]).astype(np.float32)[..., None]
    expected = (tokens * mask).sum(1) / mask.sum(1)
    assert vectors.shape == (24, teacher.backbone.hidden_dim)
    np.testing.assert_allclose(vectors, expected, atol=5e-3)  # cached as float16
    # Both outputs come from one pass and land in the cache together.
    key = teacher_lib.fingerprint(teacher, texts) + ".npy"
    assert os.path.exists(os.path.join(teacher_dir, "vectors", key))
    np.testing.assert_allclose(teacher_lib.logits(teacher, texts, cache_dir=teacher_dir, verbose=False),
                               teacher_lib.logits(teacher, texts, verbose=False), atol=2e-4)


def test_token_vectors_are_what_the_teacher_makes_of_a_piece_read_alone(teacher):
    words = ["good", "awful", "film"]
    ids = [teacher.preprocessor.tokenizer.token_to_id(word) for word in words]
    vectors = teacher_lib.token_vectors(teacher, ids, batch_size=2)  # a full batch and a short one
    np.testing.assert_allclose(vectors, teacher_lib.sentence_vectors(teacher, words, verbose=False), atol=1e-4)
    np.testing.assert_allclose(teacher_lib.token_vectors(TeacherEnsemble([teacher, teacher]), ids), vectors, atol=1e-5)


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


@pytest.mark.slow  # a third MiniLM fine-tune (about 50 s) for an option that is off by default
def test_early_stopping_keeps_the_best_epoch_on_held_out_labels(sst2_splits, tmp_path):
    from kdistill import pipeline

    config = TeacherConfig(epochs=3, min_steps=0, sequence_length=64, validation_fraction=0.25)
    model, metrics = pipeline.train_or_reuse_teacher(sst2_splits, str(tmp_path), config, seed=0)
    assert metrics["teacher_validation_rows"] == 75  # a quarter of the 300 labels, class shares kept
    assert 1 <= metrics["teacher_best_epoch"] <= metrics["teacher_epochs_run"] <= 3
    # The saved teacher is the best epoch's: it scores the held-out rows as that epoch did.
    _, _, (held_texts, held_labels) = pipeline._teacher_rows(sst2_splits, 0.25, 0)
    held_acc = accuracy(teacher_lib.logits(model, held_texts, verbose=False), held_labels)
    assert abs(held_acc - metrics["teacher_validation_acc"]) <= 1 / 75 + 1e-9
    assert metrics["teacher_dev_acc"] > 0.65
    # The held-out rows changed the teacher's cache key; the default config's key is what it always was.
    assert pipeline._teacher_key(sst2_splits, config, 0) != pipeline._teacher_key(
        sst2_splits, TeacherConfig(epochs=3, min_steps=0, sequence_length=64), 0)
    assert "validation_fraction" not in pipeline.cache_fields(TeacherConfig(validation_fraction=0.0))


def test_a_validation_fraction_that_leaves_nothing_to_train_on_is_refused(sst2_splits):
    from kdistill import pipeline
    from kdistill.errors import KdistillError

    with pytest.raises(KdistillError, match="--teacher_validation_fraction=1.0: cannot hold out 300 of 300 labels"):
        pipeline._teacher_rows(sst2_splits, 1.0, 0)
    texts, labels, (held_texts, held_labels) = pipeline._teacher_rows(sst2_splits, 0.1, 0)
    assert len(held_labels) == 30 and len(labels) == 270 and not set(held_texts) & set(texts)


def test_an_ensemble_folder_loads_as_one_frozen_teacher_of_its_members(teacher, teacher_dir, sst2_splits, tmp_path):
    # A second member that disagrees with the first: the same weights with its head's bias moved.
    other = teacher_lib.load(teacher_dir)
    kernel, bias = other.output_dense.get_weights()
    other.output_dense.set_weights([kernel, bias + np.array([2.0, -2.0])])
    other_dir = str(tmp_path / "other")
    teacher_lib.save(other, other_dir)
    ensemble_dir = str(tmp_path / "ensemble")
    os.makedirs(ensemble_dir)
    teacher_lib.save_ensemble([teacher_dir, other_dir], ensemble_dir)

    ensemble = teacher_lib.load(ensemble_dir)
    assert isinstance(ensemble, teacher_lib.TeacherEnsemble)
    assert ensemble.trainable_weights == [] and ensemble.count_params() == 2 * teacher.count_params()
    texts = list(sst2_splits.dev_texts[:32])
    logits = teacher_lib.logits(ensemble, texts, cache_dir=ensemble_dir, verbose=False)
    first, second = (teacher_lib.logits(m, texts, verbose=False) for m in (teacher, other))
    probs = (np.exp(first) / np.exp(first).sum(1, keepdims=True) + np.exp(second) / np.exp(second).sum(1, keepdims=True)) / 2
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), probs, atol=1e-4)
    assert (np.argmax(first, 1) != np.argmax(second, 1)).any()  # the members really differ
    # Each member cached its own logits in its own folder; the ensemble's folder holds none.
    assert os.path.exists(os.path.join(other_dir, "logits", teacher_lib.fingerprint(other, texts) + ".npy"))
    assert not os.path.exists(os.path.join(ensemble_dir, "logits"))
    # The in-graph path (a Distiller fed raw strings calls the teacher itself) gives the same logits.
    in_graph = ensemble(ensemble.preprocessor(keras.ops.convert_to_tensor(texts)), training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(in_graph), logits, atol=2e-4)
    # Saving one teacher in the folder makes it that teacher again.
    teacher_lib.save(other, ensemble_dir)
    assert not isinstance(teacher_lib.load(ensemble_dir), teacher_lib.TeacherEnsemble)
