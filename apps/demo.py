"""The main job: label-scarce distillation end to end on SST-2 (or --dataset), in one command.

Fine-tunes the teacher on --num_labels labels, labels the rest of train with it,
trains the labels-only baseline and the distilled student, exports the student
to TFLite, and writes <out_dir>/summary.json.

    python -m apps.demo                      # what `make demo` runs
    python -m apps.demo --dataset=../shared/data/ag_news --out_dir=runs/ag_news
"""

from absl import flags

from apps import common
from kdistill import cli, pipeline

FLAGS = flags.FLAGS


def define_flags():
    common.define_data_flags()
    common.define_teacher_flags()
    common.define_student_flags()
    flags.DEFINE_string("export_mode", "dynamic", "TFLite quantisation of the exported student.")
    FLAGS.set_default("out_dir", "runs/demo")


def main(argv):
    del argv
    summary = pipeline.run_all(
        FLAGS.dataset, FLAGS.num_labels, FLAGS.out_dir, common.teacher_config(), common.student_config(),
        common.distill_config(), seed=FLAGS.seed, max_unlabelled=FLAGS.max_unlabelled,
        unlabelled=FLAGS.unlabelled, export_mode=FLAGS.export_mode,
    )
    print()
    print(pipeline.format_summary(summary))


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
