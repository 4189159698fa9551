"""Scaling out with TensorFlow's own distribution engine (`tf.distribute`).

`get_strategy(name)` turns `--strategy=default|mirrored|multi_worker|tpu` into a
`tf.distribute.Strategy`; the binaries build the teacher, the student and the
`Distiller` under its `scope()`, and Keras' `fit()` does the rest (it splits each
batch across the replicas and sums their gradients).

Batch sizes: `--batch_size` is the **global** batch, the rows one optimizer step
sees, whatever the hardware; each replica gets `batch_size / replicas` of them.
A run on 8 GPUs with the same flags therefore makes the same updates as a run on
one device. To keep each replica as busy as a single device was, multiply it by
the replica count yourself (`global_batch_size(per_replica, strategy)`).

Losses: Keras expects each replica's loss to be its share of the global mean
(the gradients of the replicas are summed). The `Distiller` divides each
replica's summed loss by the global row count, and its label term by the
global count of labelled rows (`global_sum`), so a batch whose labelled rows all
land on one replica weighs them exactly as one device would.

Keras 3.15's trainer has two gaps under multi-device strategies; kdistill's own models
(`Distiller`, the teacher classifiers) inherit their fixes from `StrategyFitFixes`, and
every other Keras model in the process keeps Keras' trainer as it is.

Multi-worker runs read the cluster from `TF_CONFIG`; every worker runs the same
command, the chief (`is_chief`) writes the results and the others write to a
scratch folder beside them (`worker_dir`).

Example:

```python
strategy = get_strategy("mirrored")          # all GPUs, else all (logical) CPUs
with strategy.scope():
    distiller = Distiller(teacher, student)
    distiller.compile(optimizer="adam")
distiller.fit(dataset_batched_at_the_global_batch_size, epochs=1)
```
"""

import contextlib
import json
import os
import shutil

from kdistill.errors import KdistillError

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def logical_cpus(count):
    """Splits the machine's CPU into `count` logical devices (for testing `mirrored` without GPUs).

    TensorFlow fixes its devices the first time it runs anything, so this must
    come first, before any tensor is made.
    """
    import tensorflow as tf

    if count is None or count <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(count))
    except RuntimeError:
        raise KdistillError(
            f"--cpu_devices={count}: TensorFlow has already started its devices; "
            "split the CPU before anything else runs"
        ) from None


def tf_config():
    """`TF_CONFIG` parsed (`{"cluster": ..., "task": ...}`), or None when it is not set."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise KdistillError(f"TF_CONFIG: not valid JSON ({e.msg}); see docs/SCALING.md for its form") from None
    task = config.get("task", {}) if isinstance(config, dict) else {}
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or "type" not in task or "index" not in task:
        raise KdistillError(
            'TF_CONFIG: needs "cluster" and "task": {"type": ..., "index": ...}; see docs/SCALING.md for its form'
        )
    members = cluster.get(task["type"])
    if not isinstance(members, list) or not 0 <= int(task["index"]) < len(members):
        raise KdistillError(
            f"TF_CONFIG: task {task['type']}:{task['index']} is not in the cluster {sorted(cluster)}; "
            "give each process its own task index"
        )
    return config


def get_strategy(name="default", tpu=None):
    """The `tf.distribute.Strategy` that `--strategy=<name>` means.

    - `default`: one device (TensorFlow's default strategy).
    - `mirrored`: every GPU of this machine; without GPUs, every logical CPU
      device (one, unless `logical_cpus` split it).
    - `multi_worker`: `MultiWorkerMirroredStrategy` over the cluster in `TF_CONFIG`.
      It must be created before TensorFlow runs anything else in the process.
    - `tpu`: `TPUStrategy` on the TPU named by `tpu` (default: the TPU VM's own).
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise KdistillError(f"--strategy={name}: unknown strategy; use one of {', '.join(STRATEGIES)}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker" and tf_config() is None:
        raise KdistillError(
            "--strategy=multi_worker: TF_CONFIG is not set; every worker needs it "
            '(e.g. {"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}})'
        )
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as e:
            raise KdistillError(
                f"--strategy=multi_worker: cannot start ({str(e).splitlines()[0][:160]}); the strategy must be "
                "made before TensorFlow runs anything else"
            ) from None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise KdistillError(
            f"--strategy=tpu: no TPU found ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
            "run on a TPU VM or pass --tpu=<name or grpc://address>"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def replicas(strategy):
    return int(strategy.num_replicas_in_sync)


def global_batch_size(per_replica_batch_size, strategy):
    """The global batch that gives each replica `per_replica_batch_size` rows."""
    return int(per_replica_batch_size) * replicas(strategy)


def check_batch_size(batch_size, strategy):
    """`batch_size` (global) if it splits evenly over the replicas, else a one-line error."""
    count = replicas(strategy)
    if batch_size % count:
        raise KdistillError(
            f"--batch_size={batch_size} does not split over {count} replicas; "
            f"use a multiple of {count} (it is the global batch)"
        )
    return batch_size


def num_workers(strategy):
    """Machines (processes) in the strategy's cluster: 1 unless multi-worker or a multi-host TPU."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return 1
    jobs = resolver.cluster_spec().as_dict()
    return max(1, sum(len(jobs.get(kind, [])) for kind in ("chief", "worker")))


def worker_id(strategy):
    """(task type, task index) of this process in a multi-worker cluster; ("chief", 0) elsewhere."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return "chief", 0
    return task_type, int(resolver.task_id or 0)


def is_chief(strategy):
    """Whether this process writes the results: the chief, worker 0 of a chief-less cluster, or a lone process."""
    task_type, task_id = worker_id(strategy)
    if task_type == "chief":
        return True
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_dir(path, strategy):
    """`path` for the chief; a scratch folder beside it for the other workers of a cluster.

    Every worker of a multi-worker run saves (Keras needs them all to run the same
    code), but only the chief's files are the run's; the others' go to
    `<path>.worker-<index>`, which `worker_output` removes.
    """
    if is_chief(strategy):
        return path
    task_type, task_id = worker_id(strategy)
    return f"{os.path.normpath(path)}.{task_type}-{task_id}"


@contextlib.contextmanager
def worker_output(path, strategy):
    """The folder this worker writes `path` to (`worker_dir`); on leaving, every worker waits for
    the others (`barrier`) and the workers' scratch copies are removed.

    ```python
    with distribute.worker_output("runs/x/student", strategy) as out_dir:
        pipeline.distill_student(..., out_dir, ...)
    ```
    """
    yield worker_dir(path, strategy)
    barrier(strategy)  # the chief leaves last
    if not is_chief(strategy):
        shutil.rmtree(worker_dir(path, strategy), ignore_errors=True)


def barrier(strategy):
    """Returns when every worker of a multi-worker run has got here (at once elsewhere).

    The chief hosts the cluster's coordination service: a chief that exits while other
    workers still evaluate or save leaves them with failing heartbeats. The binaries
    call it last, leaving `worker_output`.
    """
    if num_workers(strategy) == 1:
        return
    import tensorflow as tf

    @tf.function
    def all_here():
        return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("SUM", tf.constant(1.0)))

    strategy.experimental_local_results(all_here())


def global_sum(value):
    """`value` summed over the replicas of the running strategy (itself outside a replica or with one).

    Called inside a train step, it makes a count global: each replica's share of a
    mean is then `local sum / global count`, and the summed gradients are those of
    the mean over the whole global batch.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return value
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


# The Keras release whose trainer internals `StrategyFitFixes` overrides.
PATCHED_KERAS = "3.15."


def check_keras_version():
    """Refuses, in one line, a Keras release other than the one `StrategyFitFixes` was written for."""
    import keras

    if not keras.__version__.startswith(PATCHED_KERAS):
        raise KdistillError(
            f"multi-device training needs kdistill's fixes to Keras' TensorFlow trainer, written for Keras "
            f"{PATCHED_KERAS}x, but this is Keras {keras.__version__}; install the pinned keras (pip install -e .) "
            "or train on one device (--strategy=default)"
        )


class StrategyFitFixes:
    """Mixin for kdistill's own Keras models: two gaps of Keras 3's TensorFlow trainer under multi-device strategies.

    1. Before training, Keras averages the first batch over the replicas
       (`_maybe_symbolic_build`) only to learn the input shapes and dtypes. That fails
       when the replicas hold different numbers of rows (a last, partial batch that the
       teacher's shuffled length buckets may put first) or strings
       (keras-team/keras#19246). The first replica's rows tell the same dtypes, so they
       are used instead, with every axis but a float tensor's last left open: each batch
       of token ids is cut to its longest text (`tokenizer.trim_padding`), so the first
       batch's width is not the student's sequence length, which its input spec checks.
    2. Under `MultiWorkerMirroredStrategy`, Keras averages each step's scalar metrics
       (the loss, the accuracy) over the workers along axis 0, which scalars do not
       have (tensorflow/tensorflow#72388): `fit` fails on its first step. The step hands
       them to Keras as one-row vectors instead, whose axis-0 mean is the mean over the replicas.

    Only models that inherit this change; every other Keras model keeps Keras' own trainer.
    The fixes override Keras internals, so with several replicas they refuse any Keras release
    but the one they were written for (`PATCHED_KERAS`; setup.cfg pins it).
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        if replicas(strategy) > 1:
            check_keras_version()
        from keras.src import tree

        if iterator is not None:
            for _, _, it in iterator:
                data_batch = next(it)
                break
        data_batch = tree.map_structure(lambda value: _open_shape(_first_replica(value)), data_batch)
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def _make_function(self, step_function):
        import tensorflow as tf
        from keras.src.backend.tensorflow import trainer

        strategy = self.distribute_strategy
        if replicas(strategy) > 1:
            check_keras_version()
        if not trainer._collective_all_reduce_multi_worker(strategy):
            return super()._make_function(step_function)

        def step_with_scalars_as_rows(data):
            outputs = step_function(data)
            return tf.nest.map_structure(lambda v: tf.reshape(v, [1]) if v.shape.rank == 0 else v, outputs)

        return super()._make_function(step_with_scalars_as_rows)


def _first_replica(value):
    import tensorflow as tf

    return value.values[0] if isinstance(value, tf.distribute.DistributedValues) else value


def _open_shape(value):
    import keras

    if value is None:
        return None
    dtype = keras.backend.standardize_dtype(value.dtype)
    shape = [None] * len(value.shape)
    if shape and "float" in dtype:
        shape[-1] = value.shape[-1]  # a feature or logit axis: fixed by the model
    return keras.KerasTensor(tuple(shape), dtype)
