"""Training recipes: build the student, distil it from the teacher, or train it on labels alone.

The two recipes share everything but the teacher signal, so the labels-only
student is the honest baseline: same architecture, same vocabulary and
embedding initialisation, same labelled rows.

Example:

```python
splits = data.load("../shared/data/sst2", num_labels=1000)
teacher_model = teacher.build("minilm", num_classes=splits.num_classes)
teacher.fine_tune(teacher_model, splits.labelled_texts, splits.labelled_labels)
student = build_student(teacher_model, splits, StudentConfig())
distill(teacher_model, student, splits, teacher_logits=..., labelled_logits=...)
```
"""

import dataclasses

import keras
import numpy as np

from kdistill import checkpoint, io, progress
from kdistill import student as student_lib
from kdistill import tokenizer as tokenizer_lib
from kdistill.distiller import Distiller

# Fraction of the labelled rows held out to stop labels-only training (it has no other signal).
LABELS_ONLY_VALIDATION = 0.1


@dataclasses.dataclass
class StudentConfig:
    """Everything that shapes the student; saved with the run so it can be rebuilt."""

    # Pieces kept from the teacher's vocabulary (0 = all). SST-2 N=1000: 7,000 and 8,000 both
    # gave 79.24% dev; 7,000 keeps the student under 1/39 of MiniLM's parameters (564k).
    vocabulary_size: int = 7000
    sequence_length: int = 64
    embedding_dim: int = 64
    filters: int = 128
    kernel_sizes: tuple = (2, 3, 4, 5)
    dropout: float = 0.3
    separable: bool = False  # depthwise-separable convolutions
    # Each branch pooled by its mean over the text as well as its max. N=1000, mean of seeds 0
    # and 1 (distilled dev accuracy, docs/RESULTS.md and its previous version): SST-2 79.64% vs
    # 79.42% (max alone), AG News 87.35% vs 86.75%.
    pooling: str = "max_mean"
    init_embeddings: str = "teacher"  # "teacher" (PCA of its token embeddings) or "random"


@dataclasses.dataclass
class DistillConfig:
    epochs: int = 4  # SST-2, N=1000: dev accuracy peaks at 2-4 epochs over 67k texts
    # A small transfer set makes few updates in `epochs`: AG News' 4,000 texts make 128 in 4
    # epochs. Train for at least this many updates (0 = `epochs` alone). Off: 16 epochs on AG
    # News N=1000 gave -0.25 points (mean of seeds 0 and 1, docs/RESULTS.md).
    min_steps: int = 0
    batch_size: int = 128
    learning_rate: float = 2e-3
    # SST-2, N=1000 (dev accuracy, 4 epochs): alpha 0.5 -> 77.0%, 0.1 -> 79.6%, 0.0 -> 79.1%.
    # With ~2 labelled rows per batch a heavier label term overfits those rows.
    alpha: float = 0.1
    temperature: float = 2.0
    distillation_loss: str = "kl"
    # Perturbed copies of the transfer texts (augment.py) are added, labelled by the teacher,
    # until the transfer set holds about this many texts (0 = never). Off: one copy of SST-2's
    # 67k texts gave +0.86 points (N=1000, mean of 2 seeds) for 45k more texts to label, four
    # copies of AG News' 4,000 gave -0.25 (mean of 2 seeds).
    augment_to: int = 0
    seed: int = 0

    def epochs_for(self, num_rows):
        steps_per_epoch = max(-(-num_rows // self.batch_size), 1)
        return max(self.epochs, -(-self.min_steps // steps_per_epoch))


def build_student(teacher, splits, config, seed=0, kept_ids=None):
    """A fresh student for `splits`, vocabulary pruned to the task's text, embeddings from the teacher.

    `kept_ids` is a pruned vocabulary counted ahead (`tokenizer.PieceCounter` counts one over
    a transfer set too big for memory, see `pipeline.distill_student_from_shards`); without
    it the pruning counts `splits`' texts.
    """
    vocabulary = teacher.preprocessor.tokenizer.get_vocabulary()
    if kept_ids is None and config.vocabulary_size:
        corpus = np.concatenate([splits.labelled_texts, splits.unlabelled_texts])
        kept_ids = tokenizer_lib.prune_vocabulary(vocabulary, corpus, config.vocabulary_size)
    keras.utils.set_random_seed(seed)
    student = student_lib.Student(
        vocabulary,
        splits.num_classes,
        kept_ids=kept_ids,
        sequence_length=config.sequence_length,
        embedding_dim=config.embedding_dim,
        filters=config.filters,
        kernel_sizes=config.kernel_sizes,
        dropout=config.dropout,
        separable=config.separable,
        pooling=config.pooling,
        class_names=splits.class_names,
    )
    if config.init_embeddings == "teacher":
        embeddings = keras.ops.convert_to_numpy(teacher.backbone.token_embedding.embeddings)
        ids = kept_ids if kept_ids is not None else range(len(vocabulary))
        student.set_embeddings(student_lib.projected_embeddings(embeddings, ids, config.embedding_dim, seed))
    return student


def transfer_dataset(texts, teacher_logits, labels, batch_size, order):
    """(`{"text", "teacher_logits"}`, label or -1) batches in the order `order` (an `io.EpochOrder`) gives."""
    import tensorflow as tf

    texts = np.asarray([str(t) for t in texts], dtype=object)
    teacher_logits = np.asarray(teacher_logits, np.float32)
    labels = np.asarray(labels, np.int32)

    def batches():
        rows = order.rng().permutation(len(texts))
        for start in range(0, len(rows), batch_size):
            index = rows[start : start + batch_size]
            yield {"text": texts[index], "teacher_logits": teacher_logits[index]}, labels[index]

    signature = (
        {
            "text": tf.TensorSpec((None,), tf.string),
            "teacher_logits": tf.TensorSpec((None, teacher_logits.shape[1]), tf.float32),
        },
        tf.TensorSpec((None,), tf.int32),
    )
    return io.epoch_dataset(batches, signature, num_batches=-(-len(texts) // batch_size))


def distill(
    teacher, student, splits, unlabelled_logits, labelled_logits, config, callbacks=None, verbose="auto",
    backup_dir=None,
):
    """Trains `student` on the transfer set (labelled + unlabelled texts) against the teacher.

    With `backup_dir` the student and optimizer state are saved there after every
    epoch, and the same call after an interruption continues from the last finished epoch.
    """
    texts = np.concatenate([splits.labelled_texts, splits.unlabelled_texts])
    logits = np.concatenate([labelled_logits, unlabelled_logits]).astype(np.float32)
    labels = np.concatenate(
        [splits.labelled_labels, np.full(len(splits.unlabelled_texts), -1, np.int32)]
    )
    callbacks = list(callbacks or [])
    if backup_dir:
        starting_weights = [keras.ops.convert_to_numpy(w) for w in student.weights]
        key = checkpoint.run_key(repr(dataclasses.asdict(config)), texts, labels, logits, *starting_weights)
        callbacks.append(checkpoint.EpochBackup(backup_dir, key, owner=student, name="distillation"))
    keras.utils.set_random_seed(config.seed)
    distiller = Distiller(teacher, student)
    distiller.compile(
        optimizer=keras.optimizers.Adam(_cosine(config, len(texts))),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="labelled_accuracy")],
        alpha=config.alpha,
        temperature=config.temperature,
        distillation_loss=config.distillation_loss,
    )
    order = io.EpochOrder(config.seed)
    callbacks.insert(0, order)
    dataset = with_token_ids(transfer_dataset(texts, logits, labels, config.batch_size, order), student)
    return distiller.fit(
        dataset, epochs=config.epochs_for(len(texts)), callbacks=callbacks, verbose=progress.keras_verbose(verbose)
    )


def train_labels_only(student, splits, config, max_epochs=40, verbose="auto"):
    """The no-teacher baseline: cross-entropy on the labelled rows, early-stopped on a slice of them."""
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    order = np.random.default_rng(config.seed).permutation(len(splits.labelled_texts))
    num_val = max(1, int(len(order) * LABELS_ONLY_VALIDATION))
    val, train = order[:num_val], order[num_val:]

    def dataset(index, shuffle):
        texts = tf.constant([str(t) for t in splits.labelled_texts[index]])
        data = tf.data.Dataset.from_tensor_slices((texts, splits.labelled_labels[index]))
        if shuffle:
            data = data.shuffle(len(index), seed=config.seed, reshuffle_each_iteration=True)
        return data.batch(min(config.batch_size, 32))

    student.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=False,
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=4, restore_best_weights=True, start_from_epoch=2
    )
    return student.fit(
        dataset(train, True), validation_data=dataset(val, False), epochs=max_epochs,
        callbacks=[stop], verbose=progress.keras_verbose(verbose),
    )


def _cosine(config, num_rows):
    steps = int(np.ceil(num_rows / config.batch_size)) * config.epochs_for(num_rows)
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=max(steps, 1))


def accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


def agreement(logits_a, logits_b):
    return float(np.mean(np.argmax(logits_a, axis=-1) == np.argmax(logits_b, axis=-1)))


def with_token_ids(dataset, student):
    """`dataset`'s texts replaced by the student's token ids, tokenised in the input pipeline.

    The string ops then run on the host, in tf.data's threads and overlapped with
    training, and never inside a distributed train step: TPUs run no string ops,
    and GPUs would only hand strings back to the host. The ids are exactly what the
    student's own tokenizer gives, so training is unchanged.
    """
    import tensorflow as tf

    def tokenize(features, labels):
        features = dict(features)
        features["token_ids"] = student.tokenizer(features.pop("text"))
        return features, labels

    return dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def distill_shards(
    teacher, student, shards, labelled_texts, labelled_logits, labelled_labels, config, strategy=None,
    shuffle_buffer=None, callbacks=None, verbose="auto", backup_dir=None,
):
    """`distill` over a transfer set streamed from teacher-labelled TFRecord shards (`labelling`).

    The shards' rows (and the few labelled rows, mixed through each epoch) flow
    through `tf.data` (`labelling.dataset`), never all in memory, so memory does not
    grow with the row count. `config.batch_size` is the global batch: on one machine
    Keras splits each batch over the replicas; in a multi-worker cluster every worker
    reads its own share of the shards in batches of `batch_size / replicas`.
    """
    import tensorflow as tf

    from kdistill import distribute, labelling

    strategy = strategy or tf.distribute.get_strategy()
    distribute.check_batch_size(config.batch_size, strategy)
    labelled = (
        np.asarray([str(t) for t in labelled_texts], dtype=object),
        np.asarray(labelled_logits, np.float32).reshape(len(labelled_texts), shards.num_classes),
        np.asarray(labelled_labels, np.int32),
    )
    num_rows = shards.total_rows + len(labelled[0])
    callbacks = list(callbacks or [])
    if backup_dir:
        starting_weights = [keras.ops.convert_to_numpy(w) for w in student.weights]
        key = checkpoint.run_key(repr(dataclasses.asdict(config)), shards.key, *labelled, *starting_weights)
        callbacks.append(checkpoint.EpochBackup(backup_dir, key, owner=student, name="distillation"))
    keras.utils.set_random_seed(config.seed)
    order = io.EpochOrder(config.seed)
    callbacks.insert(0, order)
    # TPUs compile for one batch shape; elsewhere the last, partial batch is kept.
    tpu = isinstance(strategy, tf.distribute.TPUStrategy)

    def make_dataset(input_context=None):
        batch_size = input_context.get_per_replica_batch_size(config.batch_size) if input_context else config.batch_size
        return labelling.dataset(
            shards, batch_size, lambda: int(order.rng().integers(2**31 - 1)), tokenizer=student.tokenizer,
            labelled=labelled, shuffle_buffer=shuffle_buffer or labelling.SHUFFLE_BUFFER,
            input_context=input_context, drop_remainder=tpu,
        )

    with strategy.scope():
        distiller = Distiller(teacher, student)
        distiller.compile(
            optimizer=keras.optimizers.Adam(_cosine(config, num_rows)),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="labelled_accuracy")],
            alpha=config.alpha,
            temperature=config.temperature,
            distillation_loss=config.distillation_loss,
        )
        if distribute.num_workers(strategy) > 1:
            # Each worker reads its own share of the shards (distribute.py explains the batch sizes).
            dataset = strategy.distribute_datasets_from_function(make_dataset)
        else:
            # One machine: Keras splits each global batch over the replicas.
            dataset = make_dataset()
        return distiller.fit(
            dataset, epochs=config.epochs_for(num_rows), callbacks=callbacks, verbose=progress.keras_verbose(verbose)
        )
