"""Interrupted runs resume, and the same seed gives the same result (issue 5, docs/RELIABILITY.md): the library's
training loops stopped at an epoch's start, as a crash would stop them, then called again."""

import os

import keras
import pytest

from kdistill import checkpoint, teacher as teacher_lib, training
from kdistill.config import DistillConfig
from tests.conftest import accuracy
from tests.test_reliability import TINY_STUDENT


class StopAtEpoch(keras.callbacks.Callback):
    """Simulates a crash when `epoch` begins (the epochs before it are finished and backed up)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def small_distill(teacher, splits, logits, epochs=2, seed=0, backup_dir=None, callbacks=None):
    student = training.build_student(teacher, splits, TINY_STUDENT, seed=seed)
    config = DistillConfig(epochs=epochs, batch_size=64, seed=seed, fine_tune_epochs=0)
    history = training.distill(
        teacher, student, splits, logits["unlabelled"], logits["labelled"], config,
        callbacks=callbacks, verbose=0, backup_dir=backup_dir,
    )
    return student, history


def test_distillation_resumes_after_the_last_finished_epoch(teacher, sst2_splits, transfer_logits, tmp_path, capsys):
    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        small_distill(teacher, sst2_splits, transfer_logits, backup_dir=backup, callbacks=[StopAtEpoch(1)])
    assert os.path.isfile(os.path.join(backup, checkpoint.STATE_FILE))
    student, history = small_distill(teacher, sst2_splits, transfer_logits, backup_dir=backup)
    assert "[resume] distillation resumes after epoch 1" in capsys.readouterr().out
    assert len(history.history["loss"]) == 1  # only the second epoch ran
    assert not os.path.exists(backup)
    uninterrupted, _ = small_distill(teacher, sst2_splits, transfer_logits)
    dev = sst2_splits.dev_texts, sst2_splits.dev_labels
    resumed_acc, straight_acc = (accuracy(s.predict_texts(dev[0]), dev[1]) for s in (student, uninterrupted))
    assert abs(resumed_acc - straight_acc) <= 0.02, (resumed_acc, straight_acc)


def test_backup_of_another_run_is_ignored(teacher, sst2_splits, transfer_logits, tmp_path, caplog):
    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        small_distill(teacher, sst2_splits, transfer_logits, seed=1, backup_dir=backup, callbacks=[StopAtEpoch(1)])
    _, history = small_distill(teacher, sst2_splits, transfer_logits, epochs=1, backup_dir=backup)
    assert len(history.history["loss"]) == 1
    assert any("belongs to another run" in r.getMessage() for r in caplog.records)


@pytest.mark.slow  # two MiniLM fine-tunes (about 40 s); the distillation resume above shares its checkpoint code
def test_teacher_fine_tuning_resumes(sst2_splits, tmp_path, capsys):
    texts, labels = sst2_splits.labelled_texts[:32], sst2_splits.labelled_labels[:32]
    backup = str(tmp_path / "backup")

    def fresh_teacher():
        keras.utils.set_random_seed(0)
        return teacher_lib.build("minilm", 2, sequence_length=32)

    with pytest.raises(KeyboardInterrupt):
        teacher_lib.fine_tune(fresh_teacher(), texts, labels, epochs=2, verbose=0, backup_dir=backup,
                              callbacks=[StopAtEpoch(1)])
    model = fresh_teacher()
    teacher_lib.fine_tune(model, texts, labels, epochs=2, verbose=0, backup_dir=backup)
    assert "[resume] teacher fine-tuning resumes after epoch 1" in capsys.readouterr().out
    assert not os.path.exists(backup)


# Dev accuracy of two same-seed runs in one process on CPU; docs/RELIABILITY.md states what was measured.
SAME_SEED_TOLERANCE = 0.0


def test_same_seed_distillation_gives_the_same_dev_accuracy(teacher, sst2_splits, transfer_logits):
    dev = sst2_splits.dev_texts, sst2_splits.dev_labels
    accs = [
        accuracy(small_distill(teacher, sst2_splits, transfer_logits, epochs=1)[0].predict_texts(dev[0]), dev[1])
        for _ in range(2)
    ]
    assert abs(accs[0] - accs[1]) <= SAME_SEED_TOLERANCE, accs
