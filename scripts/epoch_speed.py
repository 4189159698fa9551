"""Seconds per distillation epoch with batches convolved whole and in parts (`Distiller.compile(batch_parts=...)`),
from memory (`training.distill`'s batches) and streamed from TFRecord shards (`training.distill_shards`'s).

    python scripts/epoch_speed.py --work_dir=runs/epoch_speed [--texts=67349] [--epochs=3] [--rounds=2]

SST-2's training sentences with random teacher logits (the time of a step does not depend on them), the default
student, batches of 128. The four settings run in turn, `--rounds` times, each in a fresh process, since a shared
machine's speed drifts: compare settings within a round. Prints one line per epoch; the first epoch of each run
pays for tracing and is reported apart.
"""

import os
import subprocess
import sys
import time

import checkout  # first: kdistill from this checkout

SST2 = os.path.normpath(os.path.join(checkout.ROOT, "..", "shared", "data", "sst2", "train.tsv"))
NUM_SHARDS = 4


def one_run(args):
    import dataclasses

    import keras
    import numpy as np
    import tensorflow as tf

    from kdistill import config as config_lib, io, labelling, student as student_lib, teacher as teacher_lib
    from kdistill import tokenizer as tokenizer_lib, training

    texts = [line.split("\t")[1] for line in open(SST2, encoding="utf-8").read().splitlines()[1 : args.texts + 1]]
    logits = np.random.default_rng(0).normal(size=(len(texts), 2)).astype(np.float32)
    vocabulary = teacher_lib.build(num_classes=2).preprocessor.tokenizer.get_vocabulary()
    kept = tokenizer_lib.prune_vocabulary(vocabulary, np.asarray(texts, dtype=object), config_lib.PIECES_KEPT)
    student = student_lib.Student(vocabulary, 2, kept_ids=kept)
    config = dataclasses.replace(config_lib.DistillConfig(), epochs=args.epochs, fine_tune_epochs=0)
    distiller = training.new_distiller(None, student, config, len(texts))
    distiller.compile(optimizer=distiller.optimizer, alpha=distiller.alpha, temperature=distiller.temperature,
                      batch_parts=args.parts)
    order = io.EpochOrder(0)
    if args.source == "memory":
        data = training.transfer_dataset(training.student_token_ids(student, texts), logits,
                                         np.full(len(texts), -1, np.int32), config.batch_size, order)
    else:
        files = [os.path.join(args.work_dir, labelling.shard_stem(k, NUM_SHARDS) + ".tfrecord") for k in range(NUM_SHARDS)]
        if not all(os.path.exists(f) for f in files):
            os.makedirs(args.work_dir, exist_ok=True)
            for k, name in enumerate(files):
                with tf.io.TFRecordWriter(name) as writer:
                    for text, row in zip(texts[k::NUM_SHARDS], logits[k::NUM_SHARDS]):
                        writer.write(labelling.serialize(text, row))
        shards = labelling.Shards(files, [len(texts[k::NUM_SHARDS]) for k in range(NUM_SHARDS)], 2, "random", "random")
        data = labelling.dataset(shards, config.batch_size, lambda: int(order.rng().integers(2**31 - 1)),
                                 tokenizer=student.tokenizer)

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.start
            print(f"{args.source:<8} parts {args.parts}  epoch {epoch}{' (traces)' if epoch == 0 else ''}: "
                  f"{seconds:5.1f} s", flush=True)

    distiller.fit(data, epochs=args.epochs, callbacks=[order, EpochTimes()], verbose=0)


def main():
    # --source and --parts pick one run: the parent runs each setting in a fresh process.
    args = checkout.arguments(__doc__, work_dir="runs/epoch_speed", texts=67_349, epochs=3, rounds=2, source="",
                              parts=0)
    if args.source:
        return one_run(args)
    from kdistill import training

    for round_ in range(args.rounds):
        print(f"round {round_ + 1} of {args.rounds}", flush=True)
        for source in ("memory", "shards"):
            for parts in (1, training.CPU_BATCH_PARTS):
                subprocess.run([sys.executable, __file__, f"--work_dir={args.work_dir}", f"--texts={args.texts}",
                                f"--epochs={args.epochs}", f"--source={source}", f"--parts={parts}"], check=True,
                               stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
