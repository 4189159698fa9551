"""Measures the teacher's accuracy against its fine-tuning length on validation rows carved from train, the
measurement behind `config.UPDATES_PER_CLASS` (issue #29: on many classes the teacher stopped underfit).

    python scripts/teacher_epochs.py --task=clinc150 --epochs=5,10,20      # about 25 minutes on 2 cores

One teacher (seed `--seed`) per epoch count, on `--num_labels` labels; its accuracy on `--validation_rows` rows of
train outside the labelled sample (stratified), never on dev. Prints one JSON line per epoch count.
"""

import json
import os
import time

import checkout  # first: kdistill from this checkout
import keras

from kdistill import config, pipeline, teacher as teacher_lib, training


def main():
    args = checkout.arguments(__doc__, task="clinc150", data_dir="../shared/data", epochs="5,10,20", num_labels=1000,
                              validation_rows=1000, seed=0)
    splits = pipeline.load_splits(os.path.join(args.data_dir, args.task), args.num_labels, args.seed,
                                  validation_rows=args.validation_rows)
    teacher_config = config.TeacherConfig()
    steps_per_epoch = -(-len(splits.labelled_texts) // teacher_config.batch_size)
    for epochs in (int(e) for e in args.epochs.split(",")):
        # Exactly `epochs`, with the recipe's other settings: fine-tuned here, not through `pipeline.train_teacher`,
        # whose rules (`epochs_for`) would lengthen it.
        start = time.time()
        keras.utils.set_random_seed(args.seed)
        teacher = teacher_lib.build(teacher_config.handle, splits.num_classes, teacher_config.sequence_length)
        teacher_lib.fine_tune(teacher, splits.labelled_texts, splits.labelled_labels, epochs=epochs,
                              batch_size=teacher_config.batch_size, learning_rate=teacher_config.learning_rate,
                              seed=args.seed, verbose=2)
        logits = teacher_lib.logits(teacher, splits.dev_texts, verbose=False)
        print(json.dumps({"task": args.task, "num_labels": len(splits.labelled_texts), "classes": splits.num_classes,
                          "seed": args.seed, "epochs": epochs,
                          "updates_per_class": round(epochs * steps_per_epoch / splits.num_classes, 1),
                          "validation_accuracy": training.accuracy(logits, splits.dev_labels),
                          "seconds": round(time.time() - start)}), flush=True)

if __name__ == "__main__":
    main()
