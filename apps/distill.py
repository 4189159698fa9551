"""Distils the Conv1D student from a trained teacher (or, with --labels_only, trains the baseline).

    python -m apps.distill --dataset=../shared/data/sst2 --num_labels=1000 --out_dir=runs/sst2
"""

import os

from absl import flags

from apps import common
from kdistill import cli, pipeline

common.define_data_flags()
common.define_student_flags()
flags.DEFINE_bool("labels_only", False, "Train the same student on the labels alone (the baseline).")
flags.DEFINE_string("student_dir", None, "Where to save the student (default <out_dir>/student or /labels_only).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    splits = common.splits()
    teacher = pipeline.load_teacher(common.teacher_dir(), splits)
    logits = pipeline.label(teacher, common.teacher_dir(), splits)
    name = "labels_only" if FLAGS.labels_only else "student"
    student_dir = FLAGS.student_dir or os.path.join(FLAGS.out_dir, name)
    if FLAGS.labels_only:
        pipeline.train_labels_only(
            teacher, splits, student_dir, common.student_config(), common.distill_config(), logits["dev"]
        )
    else:
        pipeline.distill_student(
            teacher, logits, splits, student_dir, common.student_config(), common.distill_config()
        )


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
