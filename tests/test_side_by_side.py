import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import pytest

from kdistill import side_by_side
from kdistill.errors import KdistillError


def report_threads(path):
    import tensorflow as tf

    print("running")
    with open(path + ".tmp", "w") as f:
        f.write(f"{tf.config.threading.get_intra_op_parallelism_threads()} {side_by_side.threads()}")
    os.replace(path + ".tmp", path)


def fail_after(path, message):
    while not os.path.exists(path):  # the other job has written what the test reads before this one stops it
        time.sleep(0.1)
    raise KdistillError(message)


def test_jobs_run_in_their_own_processes_on_their_share_of_the_cores_and_a_failure_names_its_job(tmp_path, capfd):
    path = str(tmp_path / "threads")
    with pytest.raises(KdistillError, match="^broken job failed"):
        side_by_side.run([("threads job", report_threads, (path,)), ("broken job", fail_after, (path, "no labels here"))])
    assert open(path).read() == f"{side_by_side.threads_each(2)} {side_by_side.threads_each(2)}"
    out, err = capfd.readouterr()
    assert "[threads job] running" in out
    assert "[broken job] error: no labels here" in err


def test_a_job_ends_when_the_process_that_started_it_is_killed(tmp_path):
    pid_file = tmp_path / "pid"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        from kdistill import side_by_side
        from tests.test_side_by_side import write_pid_and_wait
        side_by_side.run([("waiter", write_pid_and_wait, ({str(pid_file)!r},))])
    """)], cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        deadline = time.time() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert time.time() < deadline and parent.poll() is None, "the job never started"
            time.sleep(0.2)
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 10
        while _alive(child):
            assert time.time() < deadline, "the job outlived the killed run by 10 s"
            time.sleep(0.2)
    finally:
        parent.kill()


def write_pid_and_wait(path):
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(600)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"  # a zombie has ended; nobody reaps it here
    except FileNotFoundError:
        return False


def test_only_a_strategy_of_several_replicas_keeps_the_jobs_one_after_another():
    one_replica, two_replicas = (types.SimpleNamespace(num_replicas_in_sync=n) for n in (1, 2))
    assert side_by_side.wanted(one_replica, 3) == side_by_side.wanted(None, 3)  # apps' default strategy
    assert not side_by_side.wanted(two_replicas, 3)
    assert not side_by_side.wanted(None, 1)
