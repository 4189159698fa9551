"""The main job: label-scarce distillation end to end on SST-2 (or --dataset), in one command.

Fine-tunes three teachers on --num_labels labels, labels the rest of train and
perturbed copies of it with them, trains the labels-only baseline and the
distilled student, fine-tunes it on the labels, exports it to TFLite, and writes
<out_dir>/summary.json. Its defaults are the best SST-2 recipe measured
(`kdistill.ablations.DEMO_RECIPE`); every flag of the recipe overrides them.

    python -m apps.demo                      # what `make demo` runs
    python -m apps.demo --teacher_ensemble=1 --augment_to=0 --fine_tune_epochs=0   # one teacher: faster
    python -m apps.demo --dataset=../shared/data/ag_news --augment_to=0 --out_dir=runs/ag_news
"""

from absl import flags

from kdistill import ablations, cli, pipeline
from kdistill.apps import common

FLAGS = flags.FLAGS


def define_flags():
    common.define_data_flags()
    common.define_teacher_flags()
    common.define_student_flags()
    flags.DEFINE_string("export_mode", "dynamic", "TFLite quantisation of the exported student.")
    common.set_recipe_defaults(ablations.ABLATIONS[ablations.DEMO_RECIPE])
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
