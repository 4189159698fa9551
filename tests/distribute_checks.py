"""Checks that need a fresh TensorFlow (logical CPU devices are fixed at start-up).

`tests/test_distribute.py` runs them as subprocesses:

    python -m tests.distribute_checks gradients scoped

prints one JSON line with what each check measured, the checks run in the order named
(one process for all: each TensorFlow start costs seconds).
"""

import json
import sys

from kdistill import distribute

distribute.logical_cpus(2)  # before anything else touches TensorFlow

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kdistill import student as student_lib, training  # noqa: E402
from kdistill.distiller import Distiller  # noqa: E402
from kdistill.config import DistillConfig  # noqa: E402

WORDS = "a the film is great dull long funny bad good story plot actors and but not very".split()
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS


def _batch(rows=16, seed=0):
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, rng.integers(2, 9))) for _ in range(rows)]
    logits = rng.normal(0, 2, (rows, 2)).astype(np.float32)
    labels = np.full(rows, -1, np.int32)
    # Three labelled rows in the first half, one in the second: under two replicas each half
    # goes to one replica, so a per-replica label mean would weigh these rows unequally.
    labels[[0, 3, 5, 12]] = [1, 0, 1, 0]
    return {"text": tf.constant(texts), "teacher_logits": tf.constant(logits)}, labels


def _with_ids(batch, student):
    """`batch` with its texts replaced by the student's ids, as `training.transfer_dataset` feeds them."""
    features, labels = batch
    features = dict(features)
    features["token_ids"] = student.tokenizer(features.pop("text"))
    return features, labels


def _one_step(strategy, alpha, temperature, batch):
    """Weights before and after one SGD(lr=1) step on `batch`, and the loss `fit` reports."""
    x, y = batch
    with strategy.scope():
        keras.utils.set_random_seed(0)
        student = student_lib.Student(VOCABULARY, 2, sequence_length=12, embedding_dim=8, filters=4,
                                      kernel_sizes=(2, 3), dropout=0.0)
        distiller = Distiller(keras.layers.Identity(), student)
        distiller.compile(optimizer=keras.optimizers.SGD(1.0), alpha=alpha, temperature=temperature)
    before = [keras.ops.convert_to_numpy(w) for w in student.trainable_weights]
    dataset = tf.data.Dataset.from_tensors(_with_ids((x, y), student))  # one global batch
    history = distiller.fit(dataset, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(w) for w in student.trainable_weights]
    return [b - a for b, a in zip(before, after)], float(history.history["loss"][0])


def gradients():
    mirrored = distribute.get_strategy("mirrored")
    assert distribute.replicas(mirrored) == 2, mirrored.extended.worker_devices
    results = {}
    for alpha, temperature in [(0.5, 2.0), (0.3, 4.0), (1.0, 2.0)]:
        batch = _batch()
        single_grads, single_loss = _one_step(distribute.get_strategy("default"), alpha, temperature, batch)
        mirrored_grads, mirrored_loss = _one_step(mirrored, alpha, temperature, batch)
        results[f"t{temperature}_alpha{alpha}"] = {
            "single_loss": single_loss,
            "mirrored_loss": mirrored_loss,
            "max_gradient_difference": max(float(np.max(np.abs(s - m))) for s, m in zip(single_grads, mirrored_grads)),
            "max_gradient": max(float(np.max(np.abs(s))) for s in single_grads),
        }
    return results


def _tiny_distiller():
    student = student_lib.Student(VOCABULARY, 2, sequence_length=12, embedding_dim=8, filters=4, kernel_sizes=(2, 3),
                                  dropout=0.0)
    distiller = Distiller(keras.layers.Identity(), student)
    distiller.compile(optimizer="sgd")
    return student, distiller


def scoped():
    """Fits a Distiller and a plain keras.Model under mirrored: only kdistill's model gets the fixes
    (each batch of 5 rows splits 3:2, which Keras' own first-batch mean cannot average), and the
    fixes refuse another Keras release."""
    from keras.src.backend.tensorflow import trainer

    keras_build, keras_reduce = trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica
    mirrored = distribute.get_strategy("mirrored")
    with mirrored.scope():
        student, distiller = _tiny_distiller()
        plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        plain.compile(optimizer="sgd", loss="mse")
    uneven = tf.data.Dataset.from_tensor_slices(_with_ids(_batch(15), student)).batch(5)
    distiller.fit(uneven, epochs=1, verbose=0)
    plain.fit(np.ones((8, 3), np.float32), np.ones((8, 1), np.float32), batch_size=4, epochs=1, verbose=0)
    result = {
        "keras_build_kept": trainer.TensorFlowTrainer._maybe_symbolic_build is keras_build,
        "keras_reduce_kept": trainer.reduce_per_replica is keras_reduce,
        "plain_model_uses_keras_build": type(plain)._maybe_symbolic_build is keras_build,
        "distiller_uses_the_fix": Distiller._maybe_symbolic_build is not keras_build,
    }
    keras.__version__ = "3.16.0"
    try:
        distiller.fit(uneven, epochs=1, verbose=0)
    except Exception as e:  # noqa: BLE001 - the test reads its type and message
        result["other_keras_error"] = f"{type(e).__name__}: {e}"
    return result


def fine_tune():
    """The default recipe's end under mirrored, as apps.distill runs it: distillation, then the gold fine-tune
    (which once fed strings to the replicas) with the same strategy. Its own process: collectives of
    strategies made before in the same process can clash."""
    mirrored = distribute.get_strategy("mirrored")
    with mirrored.scope():
        student, distiller = _tiny_distiller()
        distiller.fit(tf.data.Dataset.from_tensor_slices(_with_ids(_batch(16), student)).batch(8),
                      epochs=1, verbose=0)
        before = [keras.ops.convert_to_numpy(w) for w in student.trainable_weights]
        texts, labels = ["a fine film", "a dull film", "fine", "dull", "a film"] * 4, [1, 0, 1, 0, 1] * 4
        history = training.fine_tune_on_labels(student, texts, labels, DistillConfig(fine_tune_epochs=2), verbose=0)
    moved = [not np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in zip(before, student.trainable_weights)]
    return {"epochs": len(history.history["loss"]), "every_weight_moved": all(moved)}


def labelling():
    """The teacher's logits with each batch split over two replicas (`teacher.predictor(..., strategy)`, as
    `apps.label --strategy=mirrored` labels) against one device's, on texts whose last batches split
    unevenly: the last holds one row, which leaves one replica none."""
    from kdistill import teacher as teacher_lib

    texts = [" ".join(np.random.default_rng(i).choice(WORDS, 2 + i % 11)) for i in range(17)]
    mirrored = distribute.get_strategy("mirrored")
    with mirrored.scope():
        teacher = teacher_lib.build(num_classes=3, sequence_length=32)
    one = teacher_lib.predictor(teacher, batch_size=8)(texts)
    two = teacher_lib.predictor(teacher, batch_size=8, strategy=mirrored)(texts)
    return {"rows": len(two), "max_difference": float(np.max(np.abs(one - two))),
            "max_logit": float(np.max(np.abs(one)))}


if __name__ == "__main__":
    print(json.dumps({name: globals()[name]() for name in sys.argv[1:]}))
