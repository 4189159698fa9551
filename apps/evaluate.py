"""Dev accuracy of the teacher, the distilled student and the labels-only student of a run.

The labels-only student is trained here if the run has none yet.

    python -m apps.evaluate --dataset=../shared/data/sst2 --num_labels=1000 --out_dir=runs/sst2
"""

import os

from absl import flags

from kdistill import cli, io, pipeline
from kdistill.apps import common

FLAGS = flags.FLAGS


def define_flags():
    common.define_data_flags()
    common.define_student_flags()
    flags.DEFINE_string("student_dir", None, "Distilled student (default <out_dir>/student).")
    flags.DEFINE_string("labels_only_dir", None, "Labels-only student (default <out_dir>/labels_only).")


def main(argv):
    del argv
    splits = common.splits()
    teacher = pipeline.load_teacher(common.teacher_dir(), splits)
    student_dir = FLAGS.student_dir or os.path.join(FLAGS.out_dir, "student")
    labels_only_dir = FLAGS.labels_only_dir or os.path.join(FLAGS.out_dir, "labels_only")
    if not os.path.exists(os.path.join(labels_only_dir, pipeline.STUDENT_FILE)):
        pipeline.train_labels_only(teacher, splits, labels_only_dir, common.student_config(), common.distill_config())
    students = {
        "student": pipeline.load_student(student_dir, splits),
        "labels_only": pipeline.load_student(labels_only_dir, splits),
    }
    results = pipeline.evaluate(splits, teacher, students, teacher_dir=common.teacher_dir())
    results.update(dataset=FLAGS.dataset, num_labels=FLAGS.num_labels, seed=FLAGS.seed)
    path = io.write_json(results, os.path.join(FLAGS.out_dir, "metrics.json"))
    print(pipeline.format_evaluation(results))
    print(f"-> {path}")


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
