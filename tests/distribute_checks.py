"""Checks that need a fresh TensorFlow (logical CPU devices are fixed at start-up).

`tests/test_distribute.py` runs them as subprocesses:

    python -m tests.distribute_checks gradients

prints one JSON line with what it measured.
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


def _one_step(strategy, alpha, loss, batch):
    """Weights before and after one SGD(lr=1) step on `batch`, and the loss `fit` reports."""
    x, y = batch
    with strategy.scope():
        keras.utils.set_random_seed(0)
        student = student_lib.Student(VOCABULARY, 2, sequence_length=12, embedding_dim=8, filters=4,
                                      kernel_sizes=(2, 3), dropout=0.0)
        distiller = Distiller(keras.layers.Identity(), student)
        distiller.compile(optimizer=keras.optimizers.SGD(1.0), alpha=alpha, temperature=2.0,
                          distillation_loss=loss)
    before = [keras.ops.convert_to_numpy(w) for w in student.trainable_weights]
    dataset = training.with_token_ids(tf.data.Dataset.from_tensors((x, y)), student)  # one global batch
    history = distiller.fit(dataset, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(w) for w in student.trainable_weights]
    return [b - a for b, a in zip(before, after)], float(history.history["loss"][0])


def gradients():
    mirrored = distribute.get_strategy("mirrored")
    assert distribute.replicas(mirrored) == 2, mirrored.extended.worker_devices
    results = {}
    for alpha, loss in [(0.5, "kl"), (0.3, "mse"), (1.0, "kl")]:
        batch = _batch()
        single_grads, single_loss = _one_step(distribute.get_strategy("default"), alpha, loss, batch)
        mirrored_grads, mirrored_loss = _one_step(mirrored, alpha, loss, batch)
        results[f"{loss}_alpha{alpha}"] = {
            "single_loss": single_loss,
            "mirrored_loss": mirrored_loss,
            "max_gradient_difference": max(float(np.max(np.abs(s - m))) for s, m in zip(single_grads, mirrored_grads)),
            "max_gradient": max(float(np.max(np.abs(s))) for s in single_grads),
        }
    return results


if __name__ == "__main__":
    print(json.dumps({sys.argv[1]: globals()[sys.argv[1]]()}))
