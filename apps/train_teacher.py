"""Fine-tunes the BERT teacher on the labelled sample and saves it with its dev accuracy.

    python -m apps.train_teacher --dataset=../shared/data/sst2 --num_labels=1000 --out_dir=runs/sst2
"""

from absl import flags

from apps import common
from kdistill import cli, pipeline

common.define_data_flags()
common.define_teacher_flags()
FLAGS = flags.FLAGS


def main(argv):
    del argv
    pipeline.train_teacher(common.splits(), common.teacher_dir(), common.teacher_config(), FLAGS.seed)


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
