"""Fine-tunes the BERT teacher on the labelled sample and saves it with its dev accuracy.

    python -m apps.train_teacher --dataset=../shared/data/sst2 --num_labels=1000 --out_dir=runs/sst2

`--strategy=mirrored|multi_worker|tpu` trains it on several devices (docs/SCALING.md);
`--teacher_batch_size` is then the global batch, split over the replicas.
"""

from absl import flags

from kdistill import cli, distribute, pipeline
from kdistill.apps import common

FLAGS = flags.FLAGS


def define_flags():
    common.define_data_flags()
    common.define_teacher_flags()
    common.define_strategy_flags()


def main(argv):
    del argv
    strategy = common.strategy()  # first: a multi-worker strategy must start before TensorFlow runs anything
    with distribute.worker_output(common.teacher_dir(), strategy) as out_dir:
        pipeline.train_teacher(common.splits(), out_dir, common.teacher_config(), FLAGS.seed, strategy=strategy,
                               reuse=False)


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
