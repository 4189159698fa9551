"""Shared fixtures: small real slices of the shared data, a real fine-tuned MiniLM teacher, a small run.

`small_run` is a run folder made by the binaries themselves (`apps.train_teacher`,
`apps.distill`: teacher, distilled and labels-only students), shared by the tests of
the binaries that read a run. Its teacher, fine-tuned once per session, is also the
teacher every other test gets (`teacher_dir`, a copy of it): one MiniLM fine-tune per
session, not two. Those tests start as soon as the teacher is written
(`small_run_teacher`), not after the run's distillation.

`make test` runs the suite on two xdist workers (one test file at a time each). The
session fixtures that cost a fine-tune or a pass of the teacher are built once, by the
first worker that asks, in the folder the workers share (`_built_once`, `_once`); the
other waits for it instead of building its own.
"""

import contextlib
import glob
import os
import shutil

import filelock
import numpy as np
import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers share the 2 cores: one TensorFlow thread each (and in the binaries they start), not two
    # pools of two whose waiting threads spin on the cores the other worker needs.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

from kdistill import data, teacher as teacher_lib
from tests.binaries import run_app, run_in_process

SHARED_DATA = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
SST2 = os.path.join(SHARED_DATA, "sst2")
AG_NEWS = os.path.join(SHARED_DATA, "ag_news")
MPQA = os.path.join(SHARED_DATA, "mpqa")


# The binaries' small run: few labels, few epochs, a narrow student.
SMALL_NUM_LABELS, SMALL_UNLABELLED, SMALL_SEED = 300, 600, 1
SMALL_LABELS = [f"--num_labels={SMALL_NUM_LABELS}", f"--max_unlabelled={SMALL_UNLABELLED}", f"--seed={SMALL_SEED}"]
# The fast recipe (one teacher, no copies, no gold fine-tune) keeps the binaries' tests short.
SMALL_TEACHER = ["--recipe=fast", "--teacher_epochs=3", "--teacher_min_steps=0", "--max_seq_length=64"]
SMALL_STUDENT = ["--recipe=fast", "--epochs=2", "--vocabulary_size=2000", "--embedding_dim=16", "--filters=16"]
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


def _once(tmp_path_factory, name, action):
    """Runs `action()` once per session, in whichever worker asks first; the other waits for it."""
    root = _xdist_root(tmp_path_factory)
    if root is None:  # one process: the session fixture calling this runs once anyway
        action()
        return
    with _one_worker_at_a_time(tmp_path_factory, name):
        if not (root / f"{name}.done").exists():  # a worker that failed half-way left no mark: run it again
            action()
            (root / f"{name}.done").touch()


def _built_once(tmp_path_factory, name, build):
    """A folder filled by `build(folder)` once per session, whichever worker asks first."""
    root = _xdist_root(tmp_path_factory)
    folder = root / name if root else tmp_path_factory.mktemp(name)

    def fill():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        build(folder)

    _once(tmp_path_factory, name, fill)
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


# The test files from the longest to the shortest, as `make test` measured them on the 2-core machine (CPU seconds
# of each file's tests on 2026-12-06: 60 down to 5 for those needing the teacher). A file not listed goes after them.
LONGEST_FIRST = (
    "test_apps.py", "test_distiller.py", "test_labelling.py", "test_resume.py", "test_demo.py", "test_reliability.py",
    "test_benchmark.py", "test_teacher.py", "test_augment.py",  # these need the session's teacher
    "test_distribute.py", "test_export.py", "test_web.py", "test_student.py", "test_teacher_model.py",
)


@pytest.hookimpl(trylast=True)  # after `-m` has deselected what will not run
def pytest_collection_modifyitems(items):
    """Orders the test files for `make test`'s two workers, which xdist hands them to in this order:
    - first the file that builds the small run (`small_run`), so that one worker fine-tunes the session's teacher
      and then builds what the other teacher files share (the int8 labeller, the students) before they ask;
    - then the files that need no teacher, for the other worker meanwhile;
    - then the rest, longest first, so that the short ones even out where the two workers end."""
    files = {}
    for item in items:
        files.setdefault(item.path, []).append(item)
    by_length = sorted(files, key=lambda path: LONGEST_FIRST.index(path.name) if path.name in LONGEST_FIRST
                       else len(LONGEST_FIRST))
    needs_teacher = {path: any("small_run_teacher" in item.fixturenames for item in tests)
                     for path, tests in files.items()}
    builds_run = max(by_length, key=lambda path: sum("small_run" in item.fixturenames for item in files[path]))
    rest = [path for path in by_length if path != builds_run]
    order = [builds_run] + [path for path in rest if not needs_teacher[path]] + [path for path in rest if needs_teacher[path]]
    items[:] = [item for path in order for item in files[path]]


def _small_run_flags(dataset, out):
    return [f"--dataset={dataset}", *SMALL_LABELS, f"--out_dir={out}"]


@pytest.fixture(scope="session")
def small_run_teacher(small_sst2, tmp_path_factory):
    """The small run's folder once `apps.train_teacher` (a subprocess) has written its teacher: the session's
    one fine-tune. The tests that need only the teacher start from here."""
    def train(out):
        run_app("apps.train_teacher", *_small_run_flags(small_sst2, out), *SMALL_TEACHER)

    return _built_once(tmp_path_factory, "run", train)


@pytest.fixture(scope="session")
def small_run(small_run_teacher, small_sst2, labeller_teacher_dir, tmp_path_factory):
    """The small run's folder with its students too: `apps.distill` (a subprocess), and labels-only. Its
    teacher's folder gets the session's int8 labeller first (the same weights, so the same key): the binary
    labels through it as it would through its own."""
    def distil():
        logits_dir = os.path.join(small_run_teacher, "teacher", teacher_lib.LOGITS_DIR)
        os.makedirs(logits_dir, exist_ok=True)
        for labeller in glob.glob(os.path.join(labeller_teacher_dir, teacher_lib.LOGITS_DIR, "labeller-*.tflite")):
            shutil.copy(labeller, logits_dir)
        flags = [*_small_run_flags(small_sst2, small_run_teacher), *SMALL_STUDENT]
        run_app("apps.distill", *flags)
        run_in_process("apps.distill", *flags, "--labels_only")

    _once(tmp_path_factory, "run_students", distil)
    return small_run_teacher


@pytest.fixture(scope="session")
def teacher_dir(small_run_teacher, tmp_path_factory):
    """The small run's teacher (MiniLM-L6, 300 SST-2 labels, 3 epochs), copied without its logit cache:
    the tests of the binaries count the run's own cache files."""
    def copy(folder):
        # The run's distillation may be filling its logit cache meanwhile: that is never copied.
        shutil.copytree(os.path.join(small_run_teacher, "teacher"), folder / "teacher",
                        ignore=shutil.ignore_patterns("logits", "vectors"))

    return os.path.join(_built_once(tmp_path_factory, "teacher", copy), "teacher")


@pytest.fixture(scope="session")
def teacher(teacher_dir):
    return teacher_lib.load(teacher_dir)


@pytest.fixture(scope="session")
def labeller_teacher_dir(teacher, teacher_dir, tmp_path_factory):
    """`teacher_dir` with the teacher's int8 LiteRT labeller (this CPU's labelling runtime) written in its cache:
    converting it takes about 12 s, so it is done once per session and the runs that label on the default
    runtime, or copy the cache, find it there."""
    _once(tmp_path_factory, "labeller",
          lambda: teacher_lib.predictor(teacher, runtime=teacher_lib.LITERT_INT8, cache_dir=teacher_dir))
    return teacher_dir


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
