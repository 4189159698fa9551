import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from kdistill import pipeline, teacher as teacher_lib, training
from kdistill.config import DistillConfig, StudentConfig
from kdistill.distiller import Distiller
from tests.conftest import accuracy

SMALL = StudentConfig(vocabulary_size=3000, embedding_dim=32, filters=32, kernel_sizes=(2, 3, 4))


def _softmax(x, t=1.0):
    e = np.exp((x - x.max(-1, keepdims=True)) / t)
    return e / e.sum(-1, keepdims=True)


def _distiller(teacher, sst2_splits, **compile_kwargs):
    distiller = Distiller(teacher, training.build_student(teacher, sst2_splits, SMALL))
    distiller.compile(optimizer="adam", **compile_kwargs)
    return distiller


def test_kl_loss_is_the_softened_kl_times_t_squared(teacher, sst2_splits, transfer_logits):
    distiller = _distiller(teacher, sst2_splits, alpha=0.0, temperature=3.0)
    texts = tf.constant(list(sst2_splits.labelled_texts[:16]))
    t_logits = transfer_logits["labelled"][:16]
    s_logits = keras.ops.convert_to_numpy(distiller(texts))
    x = {"text": texts, "teacher_logits": t_logits}
    loss = float(distiller.compute_loss(x, None, s_logits))
    p, q = _softmax(t_logits, 3.0), _softmax(s_logits, 3.0)
    expected = np.mean(np.sum(p * np.log(p / q), -1)) * 9.0
    assert loss == pytest.approx(expected, rel=1e-4)


def test_kl_and_label_terms_mix_by_alpha(teacher, sst2_splits, transfer_logits):
    distiller = _distiller(teacher, sst2_splits, alpha=0.25, temperature=2.0)
    texts = tf.constant(list(sst2_splits.labelled_texts[:8]))
    t_logits = transfer_logits["labelled"][:8]
    s_logits = keras.ops.convert_to_numpy(distiller(texts))
    labels = np.array([1, 0, -1, -1, 1, -1, 0, -1], np.int32)  # -1: unlabelled rows
    loss = float(distiller.compute_loss({"text": texts, "teacher_logits": t_logits}, labels, s_logits))
    have = labels >= 0
    ce = -np.log(_softmax(s_logits)[np.arange(8), np.maximum(labels, 0)])[have].mean()
    p, q = _softmax(t_logits, 2.0), _softmax(s_logits, 2.0)
    kl = np.mean(np.sum(p * np.log(p / q), -1)) * 4.0
    assert loss == pytest.approx(0.25 * ce + 0.75 * kl, rel=1e-4)


def test_runs_the_teacher_when_the_batch_has_no_logits(teacher, sst2_splits, transfer_logits):
    distiller = _distiller(teacher, sst2_splits)
    texts = tf.constant(list(sst2_splits.labelled_texts[:16]))
    live = keras.ops.convert_to_numpy(distiller.teacher_logits(texts))
    np.testing.assert_allclose(live, transfer_logits["labelled"][:16], atol=2e-4)
    s_logits = distiller(texts)
    cached = distiller.compute_loss({"text": texts, "teacher_logits": transfer_logits["labelled"][:16]}, None, s_logits)
    assert float(distiller.compute_loss(texts, None, s_logits)) == pytest.approx(float(cached), rel=1e-3)


def test_bad_compile_arguments_are_refused(teacher, sst2_splits):
    distiller = Distiller(teacher, training.build_student(teacher, sst2_splits, SMALL))
    with pytest.raises(ValueError, match="alpha"):
        distiller.compile(alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        distiller.compile(temperature=0.0)


def _distil(teacher, splits, unlabelled_logits, labelled_logits, epochs=8):
    student = training.build_student(teacher, splits, SMALL)
    config = DistillConfig(epochs=epochs, batch_size=64, alpha=0.0, fine_tune_epochs=0)
    training.distill(teacher, student, splits, unlabelled_logits, labelled_logits, config, verbose=0)
    return student


def test_the_teachers_signal_reaches_the_student(teacher, sst2_splits, transfer_logits):
    """Pure distillation (alpha=0): the student can only learn what the logits say."""
    before = [keras.ops.convert_to_numpy(w) for w in teacher.weights]
    true = _distil(teacher, sst2_splits, transfer_logits["unlabelled"], transfer_logits["labelled"])
    rng = np.random.default_rng(0)
    shuffled = _distil(
        teacher, sst2_splits,
        rng.permutation(transfer_logits["unlabelled"]), rng.permutation(transfer_logits["labelled"]),
    )
    teacher_dev = transfer_logits["dev"]
    agree_true = training.agreement(true.predict_texts(sst2_splits.dev_texts), teacher_dev)
    agree_shuffled = training.agreement(shuffled.predict_texts(sst2_splits.dev_texts), teacher_dev)
    print(f'agreement with teacher: true logits {agree_true:.3f}, shuffled {agree_shuffled:.3f}')
    assert agree_true > 0.75
    assert agree_true - agree_shuffled > 0.15
    assert accuracy(true.predict_texts(sst2_splits.dev_texts), sst2_splits.dev_labels) > 0.65
    # The frozen teacher did not move.
    after = [keras.ops.convert_to_numpy(w) for w in teacher.weights]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(b, a)


def test_fit_trains_only_the_student_and_reports_labelled_accuracy(teacher, sst2_splits, transfer_logits):
    distiller = _distiller(teacher, sst2_splits, metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")])
    assert {id(v) for v in distiller.trainable_variables} == {id(v) for v in distiller.student.trainable_variables}
    texts = tf.constant(list(sst2_splits.labelled_texts[:64]))
    logits = transfer_logits["labelled"][:64]
    labels = np.full(64, -1, np.int32)
    labels[:8] = sst2_splits.labelled_labels[:8]
    history = distiller.fit({"text": texts, "teacher_logits": logits}, labels, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # Unlabelled rows are not scored: evaluate's accuracy is the student's over the labelled rows alone.
    dev_texts = list(sst2_splits.dev_texts[:64])
    dev_labels = np.array(sst2_splits.dev_labels[:64], np.int32)
    dev_labels[16:] = -1
    # The teacher's logits ride along, as in training: the accuracy under test is the student's.
    dev = {"text": tf.constant(dev_texts), "teacher_logits": transfer_logits["dev"][:64]}
    result = distiller.evaluate(dev, dev_labels, verbose=0, return_dict=True)
    predicted = distiller.student.predict_texts(dev_texts[:16]).argmax(-1)
    assert result["acc"] == pytest.approx(np.mean(predicted == sst2_splits.dev_labels[:16]), abs=1e-6)


def test_readme_path_fit_on_raw_strings_runs_the_real_teacher(teacher, sst2_splits):
    """The README's main path: `Distiller.fit` on raw strings, -1 for unlabelled rows, the teacher run inside."""
    distiller = Distiller(teacher, training.build_student(teacher, sst2_splits, SMALL))
    distiller.compile(optimizer=keras.optimizers.Adam(5e-3), alpha=0.1, temperature=2.0)
    teacher_before = [keras.ops.convert_to_numpy(v) for v in teacher.weights]
    student_before = [keras.ops.convert_to_numpy(v) for v in distiller.student.trainable_weights]
    texts = list(sst2_splits.labelled_texts[:32]) + list(sst2_splits.unlabelled_texts[:64])
    labels = np.array(list(sst2_splits.labelled_labels[:32]) + [-1] * 64, np.int32)
    history = distiller.fit(tf.constant(texts), labels, batch_size=32, epochs=4, shuffle=True, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses  # a student that learns nothing stays near its first loss
    assert all(np.array_equal(before, keras.ops.convert_to_numpy(v))
               for before, v in zip(teacher_before, teacher.weights))
    changed = [not np.array_equal(before, keras.ops.convert_to_numpy(v))
               for before, v in zip(student_before, distiller.student.trainable_weights)]
    assert all(changed), changed


def test_distiller_round_trips_through_keras_file(teacher, sst2_splits, transfer_logits, tmp_path):
    distiller = _distiller(teacher, sst2_splits, alpha=0.3, temperature=4.0)
    # One step first, so the file holds the optimizer's state as a run's would.
    texts = tf.constant(list(sst2_splits.labelled_texts[:16]))
    distiller.fit({"text": texts, "teacher_logits": transfer_logits["labelled"][:16]},
                  np.asarray(sst2_splits.labelled_labels[:16], np.int32), batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "distiller.keras")
    distiller.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(again, Distiller)
    assert (again.alpha, again.temperature) == (0.3, 4.0)
    assert int(again.optimizer.iterations) == 1
    assert not again.teacher.trainable
    texts = list(sst2_splits.dev_texts[:10])
    np.testing.assert_allclose(again.student.predict_texts(texts), distiller.student.predict_texts(texts), atol=1e-6)


def test_pool_cut_keeps_each_texts_own_targets_and_fine_tuning_fits_the_gold_labels(
        teacher, labeller_teacher_dir, sst2_splits, transfer_logits):
    teacher_dir = labeller_teacher_dir
    config = DistillConfig(epochs=1, alpha=0.0, transfer_pool=500, augment_to=0, fine_tune_epochs=5,
                           fine_tune_learning_rate=1e-3)
    splits, targets = pipeline.transfer_targets(teacher, teacher_dir, sst2_splits, config)
    assert len(splits.unlabelled_texts) == len(targets["unlabelled"]) == 500
    assert len(set(splits.unlabelled_texts) - set(sst2_splits.unlabelled_texts)) == 0
    again = teacher_lib.logits(teacher, list(splits.unlabelled_texts[:32]), cache_dir=teacher_dir, verbose=False,
                               runtime=targets["labelling"]["runtime"])
    # The int8 labeller quantises each batch's activations together, so a text's logits move by about 0.01 with
    # its batch companions; another text's would be off by whole units.
    np.testing.assert_allclose(targets["unlabelled"][:32], again, atol=0.05)
    student = training.build_student(teacher, splits, SMALL)
    texts = list(splits.labelled_texts)

    def gold_loss():
        logits = student.predict_texts(texts)
        return float(np.mean(keras.losses.sparse_categorical_crossentropy(splits.labelled_labels, logits, from_logits=True)))

    training.distill(teacher, student, splits, targets["unlabelled"], targets["labelled"],
                     dataclasses.replace(config, fine_tune_epochs=0), verbose=0)
    distilled = gold_loss()
    training.fine_tune_on_labels(student, splits.labelled_texts, splits.labelled_labels, config, verbose=0)
    assert gold_loss() < distilled - 0.02  # a no-op fine-tune leaves it where distillation did
