"""Shared fixtures: small real slices of the shared data and a real fine-tuned MiniLM teacher.

The teacher is fine-tuned once per test session (about 20 s on 2 cores) and saved,
so every test that needs one gets the same frozen model.
"""

import os

import numpy as np
import pytest

from kdistill import data, teacher as teacher_lib

SHARED_DATA = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
SST2 = os.path.join(SHARED_DATA, "sst2")
AG_NEWS = os.path.join(SHARED_DATA, "ag_news")


def pytest_configure(config):
    if not os.path.isdir(SST2):
        raise pytest.UsageError(f"tests read the shared data at {SHARED_DATA}; put ../shared beside the checkout")


@pytest.fixture(scope="session")
def sst2_splits():
    splits = data.load(SST2, num_labels=300, seed=0, max_unlabelled=3000)
    # Dev is cut to 300 rows so teacher and student evaluations stay quick.
    splits.dev_texts, splits.dev_labels = splits.dev_texts[:300], splits.dev_labels[:300]
    return splits


@pytest.fixture(scope="session")
def teacher_dir(sst2_splits, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("teacher"))
    model = teacher_lib.build("minilm", sst2_splits.num_classes, sequence_length=64)
    teacher_lib.fine_tune(model, sst2_splits.labelled_texts, sst2_splits.labelled_labels, epochs=3, verbose=0)
    teacher_lib.save(model, folder)
    return folder


@pytest.fixture(scope="session")
def teacher(teacher_dir):
    return teacher_lib.load(teacher_dir)


@pytest.fixture(scope="session")
def transfer_logits(teacher, teacher_dir, sst2_splits):
    """Teacher logits of labelled, unlabelled and dev texts (cached beside the teacher)."""
    return {
        name: teacher_lib.logits(teacher, texts, cache_dir=teacher_dir, verbose=False)
        for name, texts in [
            ("labelled", sst2_splits.labelled_texts),
            ("unlabelled", sst2_splits.unlabelled_texts),
            ("dev", sst2_splits.dev_texts),
        ]
    }


def accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, -1) == np.asarray(labels)))
