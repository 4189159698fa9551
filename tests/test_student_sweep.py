"""scripts/student_sweep.py: its default network is the library's student, it learns from the teacher, it reports."""

import json
import os
import sys

import numpy as np

from kdistill import student as student_lib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import student_sweep as sweep  # noqa: E402


def test_default_network_is_the_library_student():
    settings = sweep.settings("default")
    network, _ = sweep.build(settings, 2)
    library = student_lib.conv_classifier(
        settings["vocab"], 2, sequence_length=settings["seq"], embedding_dim=settings["emb"],
        filters=settings["filters"], kernel_sizes=settings["kernels"], dropout=settings["dropout"],
        pooling=settings["pooling"],
    )
    assert network.count_params() == library.count_params() == 565_250
    assert [tuple(w.shape) for w in network.weights] == [tuple(w.shape) for w in library.weights]


def test_every_variant_builds(tmp_path):
    for name in sweep.VARIANTS:
        network, macs = sweep.build(sweep.settings(name), 4)
        assert network.count_params() > 0 and macs > 0, name


def test_distils_from_the_real_teacher(teacher, sst2_splits, transfer_logits):
    arrays, _ = sweep.cell_arrays(teacher, sst2_splits, transfer_logits, sequence_length=64)
    assert arrays["train_ids"].shape == (len(sst2_splits.labelled_texts) + len(sst2_splits.unlabelled_texts), 64)
    settings = dict(sweep.settings("default"), vocab=min(7000, len(arrays["kept"])))
    row = sweep.train("default", settings, 0, arrays)
    # 3,300 transfer texts are enough for the student to follow the teacher well above chance.
    assert row["agree"] > 0.7, row
    assert row["acc"] > 0.6, row
    assert row["train_agree"] > row["agree"] - 0.05, row


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
