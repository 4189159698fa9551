"""The main job: label-scarce distillation end to end on SST-2 (or --dataset), in one command.

Fine-tunes three teachers on --num_labels labels, labels the rest of train (and, for
short texts, perturbed copies of it) with them, trains the labels-only baseline and
the distilled student, fine-tunes it on the labels, exports it to TFLite, and writes
<out_dir>/summary.json. It runs the library's default recipe (`kdistill.config`, the
best measured); --recipe picks a registered variant and every config flag changes a field.

    python -m apps.demo                                  # what `make demo` runs
    python -m apps.demo --recipe=fast                    # one teacher, no copies: about a quarter of the time
    python -m apps.demo --dataset=../shared/data/ag_news --out_dir=runs/ag_news
"""

from absl import flags

from kdistill import cli, pipeline
from kdistill.export import browser
from kdistill.apps import common

FLAGS = flags.FLAGS


def define_flags():
    common.define_data_flags()
    common.define_teacher_flags()
    common.define_student_flags()
    common.define_labelling_flag()
    flags.DEFINE_string("export_mode", "dynamic", "TFLite quantisation of the exported student.")
    flags.DEFINE_enum("browser_check", "auto", list(browser.CHOICES), "Run the exported model in headless Chromium "
                      "through the run's web page on dev and save web/page.png; auto: when `make web-deps` has "
                      "installed Chromium, playwright and MediaPipe's npm package.")
    FLAGS.set_default("out_dir", "runs/demo")


def main(argv):
    del argv
    summary = pipeline.run_all(
        FLAGS.dataset, FLAGS.num_labels, FLAGS.out_dir, common.teacher_config(), common.student_config(),
        common.distill_config(), seed=FLAGS.seed, max_unlabelled=FLAGS.max_unlabelled,
        unlabelled=FLAGS.unlabelled, export_mode=FLAGS.export_mode, encoding=FLAGS.encoding,
        teacher_dir=common.teacher_dir(), browser_check=FLAGS.browser_check,
        teacher_runtime=FLAGS.teacher_runtime,
    )
    print()
    print(pipeline.format_summary(summary))


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
