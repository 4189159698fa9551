"""scripts/student_sweep.py: its default network is the library's student, it learns from the teacher, it reports."""

import dataclasses
import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kdistill import student as student_lib
from kdistill import training
from kdistill.distiller import Distiller
from kdistill.config import StudentConfig

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import student_sweep as sweep  # noqa: E402


@pytest.fixture(scope="module")
def arrays(teacher, sst2_splits, transfer_logits):
    return sweep.cell_arrays(teacher, sst2_splits, transfer_logits, sequence_length=64)[0]


def test_sweep_trains_the_pipelines_model_with_its_loss(teacher, sst2_splits, transfer_logits, arrays, monkeypatch):
    size = 2000
    monkeypatch.setitem(sweep.VARIANTS, "small_vocabulary", {"vocabulary_size": size})
    distiller, inputs, labels, config = sweep.distiller_for("small_vocabulary", 0, arrays)
    # What apps.distill trains (pipeline.distill_student): the library's student and distiller.
    student = training.build_student(teacher, sst2_splits, StudentConfig(vocabulary_size=size), seed=0)
    texts = np.concatenate([sst2_splits.labelled_texts, sst2_splits.unlabelled_texts])
    reference = training.new_distiller(teacher, student, config, len(texts))
    assert isinstance(distiller, Distiller) and distiller.network.get_config() == student.classifier.get_config()
    assert distiller.network.count_params() == student.count_params()
    assert (distiller.alpha, distiller.temperature, distiller.distillation_loss) == (
        reference.alpha, reference.temperature, reference.distillation_loss)
    def settings(optimizer):
        return {k: v for k, v in optimizer.get_config().items() if k != "name"}

    assert type(distiller.optimizer) is type(reference.optimizer)
    assert settings(distiller.optimizer) == settings(reference.optimizer)
    # The same inputs: the sweep's ids are the student tokenizer's, its targets the teacher's.
    np.testing.assert_array_equal(inputs["token_ids"][:200], student.tokenizer(texts[:200]).numpy())
    np.testing.assert_array_equal(inputs["teacher_logits"], np.concatenate([transfer_logits["labelled"],
                                                                            transfer_logits["unlabelled"]]))
    np.testing.assert_array_equal(labels[: len(sst2_splits.labelled_labels)], sst2_splits.labelled_labels)
    assert (labels[len(sst2_splits.labelled_labels):] == -1).all()
    # Seeded alike, the networks start alike (the embeddings come from the teacher's, exported as float16).
    for ours, theirs in zip(distiller.network.weights[1:], student.classifier.weights[1:]):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
    # And with the same weights, the same loss on the same batch.
    distiller.network.set_weights(student.classifier.get_weights())
    batch = {"token_ids": inputs["token_ids"][:128], "teacher_logits": inputs["teacher_logits"][:128]}
    pipeline_batch = {"text": tf.constant(list(texts[:128])), "teacher_logits": batch["teacher_logits"]}
    ours = distiller.compute_loss(batch, labels[:128], distiller(batch))
    theirs = reference.compute_loss(pipeline_batch, labels[:128], reference(pipeline_batch))
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


def test_every_variant_changes_what_it_names(teacher):
    default_student, default_distill, _, _ = sweep.configs("default", 0)
    for name, overrides in sweep.VARIANTS.items():
        student, distill, augmented, tasks = sweep.configs(name, 0)
        changed = {k for k, v in dataclasses.asdict(student).items() if v != getattr(default_student, k)}
        changed |= {k for k, v in dataclasses.asdict(distill).items() if v != getattr(default_distill, k)}
        assert changed <= set(overrides), name
        for field, value in overrides.items():
            if field not in ("augmented", "tasks"):
                assert getattr(student if hasattr(student, field) else distill, field) == value, (name, field)
        assert augmented == overrides.get("augmented", False) and set(tasks) <= set(sweep.TASKS), name
        student_lib.conv_classifier(student.vocabulary_size, 4, **student.network_kwargs())


@pytest.mark.slow  # the sweep's own end-to-end run; test_sweep_trains_the_pipelines_model_with_its_loss is the contract
def test_distils_from_the_real_teacher(sst2_splits, arrays):
    assert arrays["train_ids"].shape == (len(sst2_splits.labelled_texts) + len(sst2_splits.unlabelled_texts), 64)
    row = sweep.train("default", 0, arrays)
    # 3,300 transfer texts are enough for the student to follow the teacher well above chance.
    assert row["agree"] > 0.7, row
    assert row["acc"] > 0.6, row
    assert row["train_agree"] > row["agree"] - 0.05, row
    assert row["macs"] == 64 * 64 * 128 * (2 + 3 + 4 + 5)


def test_report_names_the_best_variant_and_misses(tmp_path):
    def row(name, task, seed, acc, params=500_000):
        return dict(name=name, task=task, seed=seed, acc=acc, agree=0.9, train_agree=0.95, teacher=0.85,
                    params=params, macs=1_000_000, backend="jax")

    rows = [row(n, t, s, a) for n, a in (("default", 0.80), ("dropout_0.1", 0.82)) for t in sweep.TASKS
            for s in sweep.SEEDS]
    rows += [row("vocab_11000", t, s, 0.90, params=900_000) for t in sweep.TASKS for s in sweep.SEEDS]
    rows.append(dict(name="emb_32", task="sst2", seed=0, error="boom"))
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sweep.report(str(results), str(tmp_path))
    text = (tmp_path / "SWEEP.md").read_text()
    assert "best variant within 582,000 parameters is `dropout_0.1`, 82.00%, 3.00 points behind" in text
    assert "Within 1 point of the teacher on both tasks: `vocab_11000`." in text
    assert "| dropout_0.1 | dropout=0.1 | 82.00 | 82.00 | +2.00 |" in text
    assert "emb_32" in text.split("No runs yet:")[1]  # a failed run is not a result
    assert (tmp_path / "sweep.png").stat().st_size > 0
