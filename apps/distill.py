"""Distils the Conv1D student from a trained teacher (or, with --labels_only, trains the baseline).

    python -m apps.distill --dataset=../shared/data/sst2 --num_labels=1000 --out_dir=runs/sst2

With `--transfer_shards` the unlabelled transfer set is streamed from the TFRecord
shards that `apps.label` wrote (the dataset then gives only the labelled and dev
rows), so it may be far bigger than memory:

    python -m apps.distill --dataset=../shared/data/sst2 --num_labels=1000 --out_dir=runs/sst2 \\
        --transfer_shards=runs/sst2/transfer

`--strategy=mirrored|multi_worker|tpu` trains on several devices (docs/SCALING.md);
`--batch_size` is the global batch, split over the replicas.
"""

import dataclasses
import os

from absl import flags

from kdistill import cli, distribute, labelling, pipeline
from kdistill.apps import common
from kdistill.errors import KdistillError

FLAGS = flags.FLAGS


def define_flags():
    common.define_data_flags()
    common.define_student_flags()
    common.define_labelling_flag()
    common.define_strategy_flags()
    flags.DEFINE_bool("labels_only", False, "Train the same student on the labels alone (the baseline; one device).")
    flags.DEFINE_string("student_dir", None, "Where to save the student (default <out_dir>/student or /labels_only).")
    flags.DEFINE_string(
        "transfer_shards", None,
        "Teacher-labelled TFRecord shards from apps.label to stream as the unlabelled transfer set: a folder, a glob, "
        "or a comma-separated list of them. The dataset's own unlabelled rows are then not used.",
    )
    flags.DEFINE_integer("shuffle_buffer", labelling.SHUFFLE_BUFFER,
                         "Rows in the shuffle buffer when streaming --transfer_shards (memory grows with it).")


def main(argv):
    del argv
    strategy = common.strategy()  # first: a multi-worker strategy must start before TensorFlow runs anything
    distill_config = common.distill_config()
    if FLAGS.transfer_shards:
        transfer_set_flags = ("unlabelled", "max_unlabelled", "augment_to", "transfer_pool", "vocabulary_words")
        given = [name for name in transfer_set_flags if FLAGS[name].present]
        if given:
            raise KdistillError(
                f"{', '.join('--' + name for name in given)} do not apply with --transfer_shards (the shards are the "
                "unlabelled transfer set, as big as apps.label made it); drop them"
            )
        if distill_config.augment_to:
            print("[distill] streaming --transfer_shards: the recipe's perturbed copies do not apply (the shards are "
                  "the transfer set)", flush=True)
        # The gold fine-tune runs after streaming as after in-memory distillation (`training.distill_shards`).
        distill_config = dataclasses.replace(distill_config, augment_to=0)
        splits = pipeline.load_splits(FLAGS.dataset, FLAGS.num_labels, FLAGS.seed, max_unlabelled=0,
                                      encoding=FLAGS.encoding)
    else:
        splits = common.splits()
    # The teacher only labels small sets here (dev, labelled rows) and lends its vocabulary:
    # one device, outside the strategy.
    teacher = pipeline.load_teacher(common.teacher_dir(), splits)
    shards = None
    if FLAGS.transfer_shards:
        shards = labelling.open_shards(FLAGS.transfer_shards)
        labelling.check_teacher(shards, teacher, FLAGS.transfer_shards)
    if shards is not None or FLAGS.labels_only:
        targets = pipeline.label(teacher, common.teacher_dir(), splits, FLAGS.teacher_runtime)
    else:  # the transfer set the distill flags ask for (pool cut, augmentation), labelled once
        splits, targets = pipeline.transfer_targets(teacher, common.teacher_dir(), splits, distill_config,
                                                    FLAGS.teacher_runtime)
    name = "labels_only" if FLAGS.labels_only else "student"
    student_dir = FLAGS.student_dir or os.path.join(FLAGS.out_dir, name)
    if FLAGS.labels_only:
        # A few hundred labelled rows: one device is enough, so --strategy does not apply.
        pipeline.train_labels_only(
            teacher, splits, student_dir, common.student_config(), distill_config, targets["dev"]
        )
        return
    with distribute.worker_output(student_dir, strategy) as out_dir, strategy.scope():
        if shards is not None:
            pipeline.distill_student_from_shards(
                teacher, targets, splits, shards, out_dir, common.student_config(), distill_config,
                strategy=strategy, shuffle_buffer=FLAGS.shuffle_buffer,
            )
        else:
            pipeline.distill_student(
                teacher, targets, splits, out_dir, common.student_config(), distill_config
            )


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
