"""tf.distribute on this machine: two logical CPU devices (MirroredStrategy) and two processes on loopback
(MultiWorkerMirroredStrategy) stand in for GPUs and machines.

Logical devices and multi-worker collectives are fixed when TensorFlow starts, and this
process started it long ago, so every check runs in fresh processes.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from kdistill import distribute, labelling, teacher as teacher_lib
from kdistill.errors import KdistillError
from tests.binaries import REPO, one_line_error, run_app, run_in_process
from tests.conftest import SST2
from tests.test_apps import read

# The conftest's sst2_splits, so the teacher's logits of its texts come from the cache.
SPLIT = [f"--dataset={SST2}", "--num_labels=300", "--seed=0"]
# The fast recipe: no perturbed copies or gold fine-tune, which these tests of the training loop do not need.
STUDENT = ["--recipe=fast", "--epochs=3", "--batch_size=64", "--vocabulary_size=3000", "--embedding_dim=32",
           "--filters=32", "--kernel_sizes=2,3,4"]
# Mirrored over 2 devices makes the same updates as one device up to float summation order
# and dropout masks (drawn per replica); on 872 dev rows that moves accuracy by about a point.
ACCURACY_TOLERANCE = 0.025
MULTI_WORKER_TIMEOUT_S = 170
# The two workers are held to one process distilling from the same shards with the same flags, not to a
# fixed figure. A fixed 0.6 was set when this test distilled from 3,000 texts (cf8a608); since b92885f the
# session's sst2_splits hold 1,500 and its teacher is the small run's, and on that slice the recipe reaches
# about 0.59 however it runs, so 0.6 failed for want of data, not for the workers. Measured on 2026-12-06
# (SST-2 dev accuracy, 2 shared CPU cores): seed 0, one process 0.5963, mirrored 0.5952, two workers 0.5883;
# seeds 1 and 2, one process 0.5539 and 0.5814, two workers 0.5562 and 0.5849; from 3,000 texts, one process
# 0.7202, two workers 0.7236. The floor asks only that the one process learnt (a constant guess gets 0.509).
STREAMED_ONE_PROCESS_FLOOR = 0.55


@pytest.fixture(scope="module")
def warm_teacher_dir(teacher, teacher_dir, transfer_logits):
    """The session teacher with the logits of every text the runs below need already cached."""
    dev = [text for _, text, _ in __import__("kdistill.data", fromlist=["x"]).iter_rows(os.path.join(SST2, "dev.tsv"))]
    teacher_lib.logits(teacher, dev, cache_dir=teacher_dir, verbose=False)
    return teacher_dir


@pytest.fixture(scope="module")
def checks():
    """What `python -m tests.distribute_checks gradients scoped` measured (a fresh TensorFlow, 2 logical CPUs)."""
    result = run_app("tests.distribute_checks", "gradients", "scoped")
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_gold_fine_tune_runs_under_mirrored():
    """The default recipe's last stage on two replicas, after distillation: token ids go to the replicas."""
    result = json.loads(run_app("tests.distribute_checks", "fine_tune").stdout.strip().splitlines()[-1])
    assert result["fine_tune"] == {"epochs": 2, "every_weight_moved": True}


def test_teacher_labels_over_two_replicas_as_on_one_device():
    result = json.loads(run_app("tests.distribute_checks", "labelling").stdout.strip().splitlines()[-1])["labelling"]
    assert result["rows"] == 17
    assert result["max_difference"] < 1e-4 * max(1.0, result["max_logit"]), result


def test_distiller_loss_and_gradients_under_mirrored_equal_one_device(checks):
    """One SGD step on the same global batch: two replicas (labelled rows split 3:1) = one device."""
    for name, check in checks["gradients"].items():
        assert check["mirrored_loss"] == pytest.approx(check["single_loss"], rel=1e-5), name
        assert check["max_gradient_difference"] < 1e-6 * max(1.0, check["max_gradient"]), (name, check)


def test_the_keras_trainer_fixes_reach_kdistill_models_only(checks):
    """Under mirrored, a Distiller fits a first batch split 3:2 while a plain keras.Model keeps Keras' trainer,
    and on another Keras release the Distiller's fit stops with the one-line error."""
    check = checks["scoped"]
    assert check["keras_build_kept"] and check["keras_reduce_kept"], check
    assert check["plain_model_uses_keras_build"] and check["distiller_uses_the_fix"], check
    assert check["other_keras_error"].startswith("KdistillError: ") and \
        "written for Keras 3.15.x, but this is Keras 3.16.0" in check["other_keras_error"], check


def test_kdistill_models_carry_the_fixes_under_their_registered_names():
    import keras

    from kdistill.distiller import Distiller
    from kdistill.teacher_model import MeanPooledBertClassifier

    for model in (Distiller, MeanPooledBertClassifier):
        assert issubclass(model, distribute.StrategyFitFixes), model
        assert keras.saving.get_registered_name(model) == f"kdistill>{model.__name__}"


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_gives_the_one_device_accuracy(warm_teacher_dir, tmp_path):
    common = SPLIT + ["--max_unlabelled=3000", f"--teacher_dir={warm_teacher_dir}", f"--out_dir={tmp_path}", *STUDENT]
    run_in_process("apps.distill", *common, f"--student_dir={tmp_path / 'one'}")
    two = run_app("apps.distill", *common, f"--student_dir={tmp_path / 'two'}", "--strategy=mirrored",
                  "--cpu_devices=2")
    assert "Using MirroredStrategy with devices" in two.stderr and "device:CPU:1" in two.stderr
    single, mirrored = read(tmp_path / "one" / "metrics.json"), read(tmp_path / "two" / "metrics.json")
    print(f"dev accuracy: one device {single['student_dev_acc']:.4f}, mirrored {mirrored['student_dev_acc']:.4f}")
    assert single["student_dev_acc"] > 0.6
    assert abs(single["student_dev_acc"] - mirrored["student_dev_acc"]) <= ACCURACY_TOLERANCE


def _free_ports(count):
    """Ports the kernel says are free now (bound to port 0, then released for the workers)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _epoch_lines(log):
    """(steps, loss) of each epoch's line of a `fit` log at verbose 2 ("29/29 - 5s - 183ms/step - ... - loss: 0.63")."""
    return [(int(m[1]), m[2]) for m in re.finditer(r"^(\d+)/\1 - .*/step - .*\bloss: ([\d.]+)", log, re.MULTILINE)]


@pytest.mark.slow
def test_two_worker_multi_worker_mirrored_distillation_on_loopback(warm_teacher_dir, teacher, sst2_splits,
                                                                  transfer_logits, tmp_path):
    """Two processes, TF_CONFIG on 127.0.0.1, streaming shards: they finish by themselves, the chief saves, and
    the student matches one process's from the same shards."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(sst2_splits.unlabelled_texts) + "\n")
    # The teacher's logits of these texts are cached already (transfer_logits): look them up.
    cached = dict(zip(sst2_splits.unlabelled_texts, transfer_logits["unlabelled"]))
    labelling.label_corpus(teacher, [str(corpus)], str(tmp_path / "shards"), num_shards=4, verbose=False,
                           predict=lambda texts: np.array([cached[t] for t in texts]))
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    student_dir = tmp_path / "student"
    flags = [*SPLIT, f"--teacher_dir={warm_teacher_dir}", f"--out_dir={tmp_path}",
             f"--transfer_shards={tmp_path / 'shards'}", *STUDENT]
    command = [sys.executable, "-m", "apps.distill", *flags, f"--student_dir={student_dir}", "--strategy=multi_worker"]
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                      "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    start = time.time()
    try:
        logs = [p.communicate(timeout=max(1, MULTI_WORKER_TIMEOUT_S - (time.time() - start)))[0] for p in processes]
    except subprocess.TimeoutExpired:
        pytest.fail(f"the two workers did not finish within {MULTI_WORKER_TIMEOUT_S} s")
    finally:
        for p in processes:
            p.kill()
            p.wait()
    for index, (p, log) in enumerate(zip(processes, logs)):
        assert p.returncode == 0, f"worker {index} failed:\n{log[-3000:]}"
    print(f"two workers finished in {time.time() - start:.0f} s")
    metrics = read(student_dir / "metrics.json")
    assert metrics["num_unlabelled"] == len(sst2_splits.unlabelled_texts)
    assert os.path.isfile(student_dir / "student.keras")
    assert not os.path.exists(f"{student_dir}.worker-1")  # the other worker's scratch copy is gone
    # Both workers took the same steps: the same losses, each over its half of the data.
    epochs = [_epoch_lines(log) for log in logs]
    assert len(epochs[0]) == 3 and epochs[0] == epochs[1], logs[0][-3000:]

    one = run_in_process("apps.distill", *flags, f"--student_dir={tmp_path / 'one'}")
    single = read(tmp_path / "one" / "metrics.json")
    print(f"dev accuracy: one process {single['student_dev_acc']:.4f}, two workers {metrics['student_dev_acc']:.4f}")
    # --batch_size is the global batch: each worker's half-batches make as many updates as the one process.
    assert [steps for steps, _ in epochs[0]] == [steps for steps, _ in _epoch_lines(one.stdout)], one.stdout[-3000:]
    assert single["num_unlabelled"] == metrics["num_unlabelled"]
    assert single["student_dev_acc"] > STREAMED_ONE_PROCESS_FLOOR
    assert abs(single["student_dev_acc"] - metrics["student_dev_acc"]) <= ACCURACY_TOLERANCE


@pytest.mark.parametrize(
    "name, config, message",
    [
        ("gpus", None, "--strategy=gpus: unknown strategy"),
        ("multi_worker", None, "TF_CONFIG is not set"),
        ("multi_worker", "{not json", "TF_CONFIG: not valid JSON"),
        ("multi_worker", '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "not in the cluster"),
    ],
)
def test_strategy_mistakes_are_one_line_errors(monkeypatch, name, config, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if config:
        monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(KdistillError, match=message):
        distribute.get_strategy(name)


def test_no_tpu_is_a_one_line_error_from_the_binary(tmp_path):
    result = run_in_process("apps.distill", *SPLIT, f"--out_dir={tmp_path}", "--strategy=tpu", check=False)
    assert "--strategy=tpu: no TPU found" in one_line_error(result)


def test_global_batch_size_helpers():
    strategy = distribute.get_strategy("default")
    assert distribute.replicas(strategy) == 1 and distribute.global_batch_size(64, strategy) == 64
    assert distribute.is_chief(strategy) and distribute.worker_dir("runs/x", strategy) == "runs/x"
    assert np.isclose(float(distribute.global_sum(np.float32(3.0))), 3.0)


def test_the_keras_trainer_fixes_refuse_another_keras_release(monkeypatch):
    import keras
    from keras.src.backend.tensorflow import trainer

    distribute.check_keras_version()
    # The fixes override these; a release that renamed them must fail the check above, not skip the fixes.
    assert all(hasattr(trainer.TensorFlowTrainer, name) for name in ("_maybe_symbolic_build", "_make_function"))
    monkeypatch.setattr(keras, "__version__", "3.16.0")
    with pytest.raises(KdistillError, match="written for Keras 3.15.x, but this is Keras 3.16.0"):
        distribute.check_keras_version()
