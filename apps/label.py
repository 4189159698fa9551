"""Labels a corpus too big for memory with the teacher, into sharded TFRecord files for `apps.distill`.

    python -m apps.label --teacher_dir=runs/sst2/teacher --input=big_corpus.txt \\
        --out=runs/sst2/transfer --num_shards=16

Texts stream from `.txt` (one per line), `.tsv`, `.csv` or `.jsonl` files (several
files, globs or folders: `--input=a.txt,b.jsonl`); row i goes to shard
`i % num_shards`. Independent processes or machines split the work:

    python -m apps.label ... --num_shards=16 --shard_index=3      # this process writes shard 3 only

Finished shards are skipped when the command runs again (unless the teacher or
the corpus changed); each shard is written to a temporary file and renamed into
place, with a JSON sidecar written last. Then:

    python -m apps.distill ... --transfer_shards=runs/sst2/transfer

On a CPU the teacher labels through its int8 LiteRT form (`--teacher_runtime`, default auto: TensorFlow
where a GPU is visible) if it gives the float32 teacher's label on at least 99% of the corpus' first 1,000
texts (else the float32 teacher labels); every run of `apps.demo` or `apps.distill` reports the same on dev. `--strategy=mirrored|tpu` runs the TensorFlow teacher over this machine's devices;
`--strategy=multi_worker` takes this worker's share of the shards from TF_CONFIG
(worker w of W writes shards w, w+W, ...), with no communication between workers.
"""

import os

from absl import flags

from kdistill import cli, distribute, io, labelling, teacher as teacher_lib
from kdistill.apps import common
from kdistill.errors import KdistillError

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_list("input", None, "Text to label: files, globs or folders of .txt/.tsv/.csv/.jsonl (comma-separated).")
    flags.DEFINE_string("out_dir", "runs/default", "Run folder (the teacher is <out_dir>/teacher unless --teacher_dir).")
    flags.DEFINE_string("teacher_dir", None, "Folder of the fine-tuned teacher (default <out_dir>/teacher).")
    flags.DEFINE_string("out", None, "Folder for the shards (default <out_dir>/transfer).")
    flags.DEFINE_integer("num_shards", 1, "How many shards the corpus is split into (row i -> shard i % num_shards).")
    flags.DEFINE_list("shard_index", None, "The shards this process writes (default: all of them).")
    flags.DEFINE_bool("keep_labels", False, "Write the files' labels (class ids) too; by default every row is unlabelled.")
    flags.DEFINE_string("encoding", "utf-8", "Text encoding of the input files.")
    flags.DEFINE_integer("batch_size", 64, "Teacher batch size (global under --strategy).")
    common.define_strategy_flags()
    common.define_labelling_flag()


def main(argv):
    del argv
    if not FLAGS.input:
        raise KdistillError("--input is required: the files of text to label")
    indices = _shard_indices()
    strategy = None
    if FLAGS.strategy in ("mirrored", "tpu"):
        strategy = common.strategy()
    # A device strategy spreads the TensorFlow teacher; under auto it is the runtime that strategy asks for.
    auto_tf = strategy is not None and FLAGS.teacher_runtime == "auto"
    runtime = teacher_lib.TENSORFLOW if auto_tf else FLAGS.teacher_runtime
    if strategy is not None and teacher_lib.labelling_runtime(runtime) != teacher_lib.TENSORFLOW:
        raise KdistillError(f"--strategy={FLAGS.strategy} spreads the TensorFlow teacher over devices; "
                            f"--teacher_runtime={runtime} runs on this CPU: pass --teacher_runtime=tensorflow")
    teacher_dir = common.teacher_dir()
    if strategy is not None:
        with strategy.scope():  # the teacher's weights on every replica
            teacher = teacher_lib.load(teacher_dir)
        predict = teacher_lib.predictor(teacher, FLAGS.batch_size, strategy)
    else:
        teacher = teacher_lib.load(teacher_dir)
        predict = None
    out = FLAGS.out or os.path.join(FLAGS.out_dir, "transfer")
    summary = labelling.label_corpus(
        teacher, FLAGS.input, out, num_shards=FLAGS.num_shards, shard_indices=indices, encoding=FLAGS.encoding,
        keep_labels=FLAGS.keep_labels, batch_size=FLAGS.batch_size, predict=predict, runtime=runtime,
        cache_dir=teacher_dir,
    )
    done = summary["labelled_shards"]
    rate = f", {summary['texts_per_second']:.1f} texts/s, teacher in {summary['labelling']['runtime']}" if done else ""
    print(
        f"[label] {summary['rows']:,} texts in {len(done)} shards ({summary['seconds']} s{rate}); "
        f"{len(summary['skipped_shards'])} finished already -> {out}", flush=True,
    )
    io.write_json(summary, os.path.join(out, f"metrics.{_name(indices)}.json"))


def _shard_indices():
    explicit = [int(i) for i in FLAGS.shard_index] if FLAGS.shard_index else None
    if FLAGS.strategy == "multi_worker":
        if explicit is not None:
            raise KdistillError("--shard_index and --strategy=multi_worker both choose shards; give one of them")
        config = distribute.tf_config()
        if config is None:
            raise KdistillError("--strategy=multi_worker: TF_CONFIG is not set; see docs/SCALING.md for its form")
        tasks = [(kind, i) for kind in ("chief", "worker") for i in range(len(config["cluster"].get(kind, [])))]
        me = (config["task"]["type"], int(config["task"]["index"]))
        if me not in tasks:
            raise KdistillError(f"TF_CONFIG: task {me[0]}:{me[1]} is neither chief nor worker; labelling runs on those")
        return labelling.worker_shards(FLAGS.num_shards, tasks.index(me), len(tasks))
    if FLAGS.strategy not in distribute.STRATEGIES:
        distribute.get_strategy(FLAGS.strategy)  # the one-line error for an unknown name
    return explicit


def _name(indices):
    if indices is None:
        return "all"
    return "shards-" + "-".join(str(i) for i in indices[:8]) + ("-etc" if len(indices) > 8 else "")


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
