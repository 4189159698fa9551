"""Shared fixtures: small real slices of the shared data, a real fine-tuned MiniLM teacher, a small run.

`small_run` is a run folder made by the binaries themselves (`apps.train_teacher`,
`apps.distill`: teacher, distilled and labels-only students), shared by the tests of
the binaries that read a run. Its teacher, fine-tuned once per session, is also the
teacher every other test gets (`teacher_dir`, a copy of it): one MiniLM fine-tune per
session, not two.

`make test` runs the suite on two xdist workers (one test file at a time each). The
session fixtures that cost a fine-tune or a pass of the teacher are built once, by the
first worker that asks, in the folder the workers share (`_built_once`); the other waits
for it instead of building its own.
"""

import contextlib
import os
import shutil

import filelock
import numpy as np
import pytest

from kdistill import data, teacher as teacher_lib
from tests.binaries import run_app, run_in_process

SHARED_DATA = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
SST2 = os.path.join(SHARED_DATA, "sst2")
AG_NEWS = os.path.join(SHARED_DATA, "ag_news")


# The binaries' small run: few labels, few epochs, a narrow student.
SMALL_NUM_LABELS, SMALL_UNLABELLED, SMALL_SEED = 300, 600, 1
SMALL_LABELS = [f"--num_labels={SMALL_NUM_LABELS}", f"--max_unlabelled={SMALL_UNLABELLED}", f"--seed={SMALL_SEED}"]
SMALL_TEACHER = ["--teacher_epochs=3", "--teacher_min_steps=0", "--max_seq_length=64"]
SMALL_STUDENT = ["--epochs=2", "--vocabulary_size=2000", "--embedding_dim=16", "--filters=16"]
SMALL_DEV_ROWS = 200


def pytest_configure(config):
    if not os.path.isdir(SST2):
        raise pytest.UsageError(f"tests read the shared data at {SHARED_DATA}; put ../shared beside the checkout")


@pytest.fixture(scope="session")
def sst2_splits():
    splits = data.load(SST2, num_labels=300, seed=0, max_unlabelled=1500)
    # Dev is cut to 300 rows so teacher and student evaluations stay quick.
    splits.dev_texts, splits.dev_labels = splits.dev_texts[:300], splits.dev_labels[:300]
    return splits


def _xdist_root(tmp_path_factory):
    """The folder this session's xdist workers share, or None when the suite runs in one process."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    return tmp_path_factory.getbasetemp().parent  # each worker's own basetemp lies inside it


@contextlib.contextmanager
def _one_worker_at_a_time(tmp_path_factory, name):
    root = _xdist_root(tmp_path_factory)
    with filelock.FileLock(str(root / f"{name}.lock")) if root else contextlib.nullcontext():
        yield


def _built_once(tmp_path_factory, name, build):
    """A folder filled by `build(folder)` once per session, whichever worker asks first."""
    root = _xdist_root(tmp_path_factory)
    if root is None:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return str(folder)
    folder, done = root / name, root / f"{name}.done"
    with _one_worker_at_a_time(tmp_path_factory, name):
        if not done.exists():  # a worker that failed half-way left no mark: build it again
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return str(folder)


def _head_of(source, folder, lines):
    """A copy of dataset folder `source` in `folder` with the first `lines[name]` lines of each file named."""
    for name in os.listdir(source):
        with open(os.path.join(source, name), encoding="utf-8") as f:
            kept = [line for _, line in zip(range(lines.get(name, 10**9)), f)]
        (folder / name).write_text("".join(kept), encoding="utf-8")
    return str(folder)


@pytest.fixture(scope="session")
def small_sst2(tmp_path_factory):
    """SST-2's first 2,000 train rows and first 200 dev rows: every pass over dev in a binary stays short."""
    rows = {"train.tsv": 2000 + 1, "dev.tsv": SMALL_DEV_ROWS + 1}  # and the header
    return _built_once(tmp_path_factory, "sst2_small", lambda folder: _head_of(SST2, folder, rows))


@pytest.fixture(scope="session")
def small_ag_news(tmp_path_factory):
    """AG News' first 1,000 train rows (all four classes) and first 200 dev rows (its CSVs have no header)."""
    rows = {"train.csv": 1000, "dev.csv": SMALL_DEV_ROWS}
    return _built_once(tmp_path_factory, "ag_news_small", lambda folder: _head_of(AG_NEWS, folder, rows))


@pytest.fixture(scope="session")
def small_run(small_sst2, tmp_path_factory):
    """A run folder from `apps.train_teacher` and `apps.distill` (subprocesses) and a labels-only student."""
    def build(out):
        flags = [f"--dataset={small_sst2}", *SMALL_LABELS, f"--out_dir={out}"]
        run_app("apps.train_teacher", *flags, *SMALL_TEACHER)
        run_app("apps.distill", *flags, *SMALL_STUDENT)
        run_in_process("apps.distill", *flags, *SMALL_STUDENT, "--labels_only")

    return _built_once(tmp_path_factory, "run", build)


@pytest.fixture(scope="session")
def teacher_dir(small_run, tmp_path_factory):
    """The small run's teacher (MiniLM-L6, 300 SST-2 labels, 3 epochs), copied without its logit cache:
    the tests of the binaries count the run's own cache files."""
    def copy(folder):
        shutil.copytree(os.path.join(small_run, "teacher"), folder / "teacher",
                        ignore=shutil.ignore_patterns("logits", "vectors"))

    return os.path.join(_built_once(tmp_path_factory, "teacher", copy), "teacher")


@pytest.fixture(scope="session")
def teacher(teacher_dir):
    return teacher_lib.load(teacher_dir)


@pytest.fixture(scope="session")
def pretrained_teacher():
    """MiniLM-L6 as it was pretrained, with a fresh 2-class head: for tests that need only its tokenizer,
    vocabulary or embeddings, which fine-tuning leaves alone or barely moves, so they need not wait for it."""
    return teacher_lib.build(num_classes=2, sequence_length=64)


@pytest.fixture(scope="session")
def transfer_logits(teacher, teacher_dir, sst2_splits, tmp_path_factory):
    """Teacher logits of labelled, unlabelled and dev texts (cached beside the teacher, which the workers share:
    the first computes them, the other reads its cache)."""
    with _one_worker_at_a_time(tmp_path_factory, "transfer_logits"):
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
