"""Independent CPU work (an ensemble's members) run side by side, one process each.

TensorFlow spreads one MiniLM fine-tuning step poorly over the cores of a small CPU:
on the 2-core machine a step took 250 ms on two threads and 330 ms on one (1.3x for
twice the cores). Three members fine-tuned at once, one thread each, keep both cores
busy with useful work instead. A GPU or a `tf.distribute` strategy trains them one
after another as before (`wanted`).

Each process gets its share of the cores (`threads_each`), prints its lines under a
prefix (`[member 2] Epoch 3/5 ...`), and ends itself when the parent process dies, so a
killed run leaves nothing training behind; its outputs are written atomically, and the
rerun resumes from them like any other run.

Example:

```python
if side_by_side.wanted(strategy=None, count=3):
    side_by_side.run([(f"member {k}", train_one, (k,)) for k in range(3)])
```
"""

import multiprocessing
import os
import sys
import threading
import time

from kdistill.errors import KdistillError


def cpus():
    """The cores this process may use (the container's share, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def wanted(strategy, count):
    """Whether `count` independent jobs should run side by side here: more than one, on a CPU of more than
    one core, with no strategy of several replicas."""
    if count < 2 or cpus() < 2 or (strategy is not None and strategy.num_replicas_in_sync > 1):
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def threads_each(count):
    return max(1, cpus() // count)


# The threads this process may use: its share inside a job of `run`, else every core.
_JOB_THREADS = None


def threads():
    return _JOB_THREADS or cpus()


def run(jobs):
    """Runs each `(name, function, args)` of `jobs` in its own process, all at once, and waits for them.

    `function` must be importable by name (a module-level function): the processes are spawned, not forked,
    since TensorFlow's runtime does not survive a fork. A job that fails stops the others and raises a
    `KdistillError` naming it; its own message is in the lines it printed.
    """
    context = multiprocessing.get_context("spawn")
    share = threads_each(len(jobs))
    processes = [
        context.Process(target=_child, args=(name, function, args, share, os.getpid()), name=name, daemon=True)
        for name, function, args in jobs
    ]
    for process in processes:
        process.start()
    try:
        _wait(processes)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


def _wait(processes):
    running = list(processes)
    while running:
        for process in list(running):
            process.join(timeout=0.5)
            if process.exitcode is None:
                continue
            running.remove(process)
            if process.exitcode != 0:
                raise KdistillError(f"{process.name} failed (exit code {process.exitcode}); its lines above say why")


def _child(name, function, args, share, parent):
    global _JOB_THREADS
    import tensorflow as tf

    _JOB_THREADS = share
    # Before TensorFlow runs anything: the thread pools are fixed then.
    tf.config.threading.set_intra_op_parallelism_threads(share)
    tf.config.threading.set_inter_op_parallelism_threads(share)
    sys.stdout = _Prefixed(sys.stdout, f"[{name}] ")
    sys.stderr = _Prefixed(sys.stderr, f"[{name}] ")
    threading.Thread(target=_end_with_parent, args=(parent,), daemon=True).start()
    try:
        function(*args)
    except KdistillError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)


def _end_with_parent(parent):
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


class _Prefixed:
    """A text stream that starts every line it writes with `prefix`."""

    def __init__(self, stream, prefix):
        self.stream, self.prefix, self.at_line_start = stream, prefix, True

    def write(self, text):
        out = []
        for piece in text.splitlines(keepends=True):
            if self.at_line_start:
                out.append(self.prefix)
            out.append(piece)
            self.at_line_start = piece.endswith("\n")
        self.stream.write("".join(out))
        return len(text)

    def flush(self):
        self.stream.flush()

    def isatty(self):
        return False  # one line per epoch: progress bars of several processes would overwrite each other

    def __getattr__(self, attribute):
        return getattr(self.stream, attribute)
