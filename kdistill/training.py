"""Training recipes: build the student, distil it from the teacher, or train it on labels alone.

The two recipes share everything but the teacher signal, so the labels-only
student is the honest baseline: same architecture, same vocabulary and
embedding initialisation, same labelled rows.

Example:

```python
splits = data.load("../shared/data/sst2", num_labels=1000)
teacher_model = teacher.build("minilm", num_classes=splits.num_classes)
teacher.fine_tune(teacher_model, splits.labelled_texts, splits.labelled_labels)
student = build_student(teacher_model, splits, config.StudentConfig())
distill(teacher_model, student, splits, teacher_logits=..., labelled_logits=...)
```
"""


import keras
import numpy as np

from kdistill import checkpoint, io, keys, progress
from kdistill import student as student_lib
from kdistill import tokenizer as tokenizer_lib
from kdistill.distiller import Distiller
from kdistill.errors import KdistillError

# Fraction of the labelled rows held out to stop labels-only training (it has no other signal).
LABELS_ONLY_VALIDATION = 0.1


def build_student(teacher, splits, config, seed=0, kept_ids=None):
    """A fresh student for `splits`, vocabulary pruned to the task's text, embeddings from the teacher.

    `kept_ids` is a pruned vocabulary counted ahead (`tokenizer.PieceCounter` counts one over
    a transfer set too big for memory, see `pipeline.distill_student_from_shards`); without
    it the pruning counts `splits`' texts.
    """
    vocabulary = teacher.preprocessor.tokenizer.get_vocabulary()
    pieces = config.pieces_kept(splits.labelled_texts)
    if kept_ids is None and pieces:
        corpus = np.concatenate([splits.labelled_texts, splits.unlabelled_texts])
        kept_ids = tokenizer_lib.prune_vocabulary(vocabulary, corpus, pieces)
    keras.utils.set_random_seed(seed)
    if config.wordpiece == "pruned":
        if kept_ids is None:
            raise ValueError("wordpiece='pruned' needs a pruned vocabulary: set vocabulary_size above 0")
        # The kept pieces become the whole vocabulary, in embedding-row order: nothing to remap.
        student = student_lib.Student([vocabulary[i] for i in kept_ids], splits.num_classes,
                                      class_names=splits.class_names, **config.network_kwargs())
    else:
        student = student_lib.Student(
            vocabulary, splits.num_classes, kept_ids=kept_ids, class_names=splits.class_names,
            **config.network_kwargs()
        )
    rows = np.asarray(kept_ids if kept_ids is not None else range(len(vocabulary)))
    embeddings = keras.ops.convert_to_numpy(teacher.backbone.token_embedding.embeddings)
    # A PCA of the teacher's input embeddings gives rare pieces, which the transfer set barely trains,
    # sensible neighbours from the first step (random ones measured -1.20 points, docs/IDEAS.md).
    student.set_embeddings(student_lib.projected_embeddings(embeddings, rows, config.embedding_dim, seed))
    return student


BUCKET_BATCHES = 100
# Issue #28: on a CPU the step's cost is the positions it convolves. A shuffled batch of 128 SST-2 texts is about
# 45 pieces wide, as wide as its longest text; convolved as 4 parts of 32 rows sorted by length, each cut to its
# own longest text, the same rows and the same loss took 22-27 s an epoch of SST-2's demo transfer set instead of
# 34 (2-core CPU, 2026-12-07). More parts cost more than they save (8: 28 ms a step against 4's 21), and parts of
# uneven sizes ran slower still (each new shape is a new convolution primitive). A GPU runs the batch whole.
CPU_BATCH_PARTS = 4


def batch_parts():
    """How many length-sorted parts `Distiller` convolves each batch in: `CPU_BATCH_PARTS` on a CPU, 1 (the whole
    batch) where a GPU or TPU holds the model, or where a strategy splits each batch over replicas (each replica's
    share is a few dozen rows; the parts were measured on whole batches of 128)."""
    import tensorflow as tf

    accelerated = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")
    replicated = tf.distribute.get_strategy().num_replicas_in_sync > 1
    return 1 if accelerated or replicated else CPU_BATCH_PARTS


def transfer_dataset(token_ids, teacher_logits, labels, batch_size, order, length_buckets=False):
    """(`{"token_ids", "teacher_logits"}`, label or -1) batches in the order `order` (an `io.EpochOrder`) gives.

    Each batch's ids are cut to its longest text (`tokenizer.trim_padding`, as streamed shards are): the same
    logits, fewer positions to convolve. The student's input is declared `sequence_length` wide; the narrower
    batches pass because `fit` traces the step for ids of any width.

    Python draws each epoch's order once; the batches are gathered and cut by TensorFlow. A Python
    generator of batches held the step back on a 2-core CPU (41 s an epoch of SST-2's demo against 34).
    """
    import tensorflow as tf

    token_ids = np.asarray(token_ids, np.int32)
    text_lengths = np.count_nonzero(token_ids, axis=1).astype(np.int32)

    def epoch_order():
        """This epoch's rows, batch after batch, and the batches' sizes."""
        rng = order.rng()
        rows = rng.permutation(len(text_lengths))
        starts = list(range(0, len(rows), batch_size))
        if length_buckets:
            run = batch_size * BUCKET_BATCHES
            rows = np.concatenate([chunk[np.argsort(text_lengths[chunk], kind="stable")]
                                   for chunk in np.split(rows, range(run, len(rows), run))])
            starts = [starts[i] for i in rng.permutation(len(starts))]
        batches = [rows[start : start + batch_size] for start in starts]
        yield np.concatenate(batches), np.array([len(b) for b in batches], np.int64)

    ids = tf.constant(token_ids)
    logits = tf.constant(np.asarray(teacher_logits, np.float32))
    targets = tf.constant(np.asarray(labels, np.int32))

    def batch(rows):
        features = {"token_ids": tokenizer_lib.trim_padding(tf.gather(ids, rows)),
                    "teacher_logits": tf.gather(logits, rows)}
        return features, tf.gather(targets, rows)

    signature = (tf.TensorSpec((None,), tf.int64), tf.TensorSpec((None,), tf.int64))
    dataset = tf.data.Dataset.from_generator(epoch_order, output_signature=signature).flat_map(
        lambda rows, sizes: tf.data.Dataset.from_tensor_slices(tf.RaggedTensor.from_row_lengths(rows, sizes)))
    dataset = dataset.map(batch).apply(tf.data.experimental.assert_cardinality(-(-len(token_ids) // batch_size)))
    return dataset.prefetch(2)


def student_token_ids(student, texts, batch_size=4096):
    """The student's ids of `texts`, `(len(texts), sequence_length)` int32, tokenised once for every epoch."""
    texts = np.asarray([str(t) for t in texts], dtype=object)
    ids = [keras.ops.convert_to_numpy(student.tokenizer(texts[i : i + batch_size]))
           for i in range(0, len(texts), batch_size)]
    return np.concatenate(ids) if ids else np.zeros((0, student.tokenizer.sequence_length), np.int32)


def new_distiller(teacher, student, config, num_rows, steps_per_execution=1):
    """The `Distiller` of `config`, compiled for `num_rows` transfer rows: every recipe (the pipeline, the
    streamed shards, the sweep) trains through this one."""
    keras.utils.set_random_seed(config.seed)
    distiller = Distiller(teacher, student)
    distiller.compile(
        optimizer=keras.optimizers.Adam(_cosine(config, num_rows)),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="labelled_accuracy")],
        alpha=config.alpha,
        temperature=config.distill_temperature(student.num_classes),
        batch_parts=batch_parts(),  # under the caller's strategy scope, which `batch_parts` asks about
        steps_per_execution=steps_per_execution,
    )
    return distiller


def distill(
    teacher, student, splits, unlabelled_logits, labelled_logits, config, callbacks=None, verbose="auto",
    backup_dir=None,
):
    """Trains `student` on the transfer set (labelled + unlabelled texts) against the teacher.

    With `backup_dir` the student and optimizer state are saved there after every epoch, and
    the same call after an interruption continues from the last finished epoch.
    """
    texts = np.concatenate([splits.labelled_texts, splits.unlabelled_texts])
    logits = np.concatenate([labelled_logits, unlabelled_logits]).astype(np.float32)
    labels = np.concatenate(
        [splits.labelled_labels, np.full(len(splits.unlabelled_texts), -1, np.int32)]
    )
    order = io.EpochOrder(config.seed)
    token_ids = student_token_ids(student, texts)

    def make_dataset(input_context=None):
        return transfer_dataset(token_ids, logits, labels, config.batch_size, order, config.length_buckets)

    return _fit(teacher, student, make_dataset, order, len(texts), (texts, labels, logits),
                (splits.labelled_texts, splits.labelled_labels), config, None, callbacks, verbose, backup_dir)


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

    from kdistill import labelling

    if config.transfer_pool:
        raise KdistillError("transfer_pool does not apply to streamed shards (they are the transfer set); set it to 0")
    labelled = (
        np.asarray([str(t) for t in labelled_texts], dtype=object),
        np.asarray(labelled_logits, np.float32).reshape(len(labelled_texts), shards.num_classes),
        np.asarray(labelled_labels, np.int32),
    )
    order = io.EpochOrder(config.seed)
    # TPUs compile for one batch shape; elsewhere the last, partial batch is kept.
    tpu = isinstance(strategy, tf.distribute.TPUStrategy)

    def make_dataset(input_context=None):
        batch_size = input_context.get_per_replica_batch_size(config.batch_size) if input_context else config.batch_size
        return labelling.dataset(
            shards, batch_size, lambda: int(order.rng().integers(2**31 - 1)), tokenizer=student.tokenizer,
            labelled=labelled, shuffle_buffer=shuffle_buffer or labelling.SHUFFLE_BUFFER,
            input_context=input_context, drop_remainder=tpu,
            bucket_batches=BUCKET_BATCHES if config.length_buckets else 0,
        )

    return _fit(teacher, student, make_dataset, order, shards.total_rows + len(labelled[0]), (shards.key, *labelled),
                (labelled[0], labelled[2]), config, strategy, callbacks, verbose, backup_dir)


def _fit(teacher, student, make_dataset, order, num_rows, content, gold, config, strategy, callbacks, verbose,
         backup_dir):
    """The one training loop behind `distill` (texts in memory) and `distill_shards` (streamed): distillation
    over the batches `make_dataset` gives, then the gold fine-tune on `gold` (texts, labels).

    `content` identifies the transfer set in the resume key; `order` seeds each epoch's shuffle.
    """
    import tensorflow as tf

    from kdistill import distribute

    strategy = strategy or tf.distribute.get_strategy()
    distribute.check_batch_size(config.batch_size, strategy)
    callbacks = [order, *(callbacks or [])]
    if backup_dir:
        starting_weights = [keras.ops.convert_to_numpy(w) for w in student.weights]
        key = keys.of(config, *content, *starting_weights)
        callbacks.append(checkpoint.EpochBackup(backup_dir, key, owner=student, name="distillation"))
    multi_worker = distribute.num_workers(strategy) > 1
    with strategy.scope():
        distiller = new_distiller(teacher, student, config, num_rows)
        # Each worker of a cluster reads its own share (distribute.py explains the batch sizes); on one
        # machine Keras splits each global batch over the replicas.
        dataset = strategy.distribute_datasets_from_function(make_dataset) if multi_worker else make_dataset()
        history = distiller.fit(
            dataset, epochs=config.epochs, callbacks=callbacks, verbose=progress.keras_verbose(verbose),
            shuffle=False,  # every source shuffles itself, seeded by `order`
        )
        if config.fine_tune_epochs and multi_worker:
            # Each worker would need its share of a few hundred labelled rows; not built yet.
            print("[distill] the gold fine-tune is skipped in a multi-worker cluster", flush=True)
        elif config.fine_tune_epochs:
            fine_tune_on_labels(student, *gold, config, verbose=verbose)
    return history


def fine_tune_on_labels(student, texts, labels, config, verbose="auto"):
    """A few epochs of cross-entropy on the gold labels alone, at a low learning rate, after distillation.

    It trains the student's id-level network on ids tokenised in the input pipeline, as distillation
    does: under a multi-device strategy a batch of strings cannot be split over the replicas.
    """
    keras.utils.set_random_seed(config.seed)
    network = student.classifier
    network.compile(
        optimizer=keras.optimizers.Adam(config.fine_tune_learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    dataset = _labelled_dataset(texts, labels, config, shuffle=True).map(lambda t, y: (student.tokenizer(t), y))
    return network.fit(
        dataset, epochs=config.fine_tune_epochs,
        verbose=progress.keras_verbose(verbose), shuffle=False,  # the dataset shuffles itself
    )


def _labelled_dataset(texts, labels, config, shuffle):
    """(text, label) batches of at most 32, shuffled each epoch when `shuffle`."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((tf.constant([str(t) for t in texts]), np.asarray(labels, np.int32)))
    if shuffle:
        data = data.shuffle(len(labels), seed=config.seed, reshuffle_each_iteration=True)
    return data.batch(min(config.batch_size, 32))


def train_labels_only(student, splits, config, max_epochs=40, verbose="auto"):
    """The no-teacher baseline: cross-entropy on the labelled rows, early-stopped on a slice of them."""
    keras.utils.set_random_seed(config.seed)
    order = np.random.default_rng(config.seed).permutation(len(splits.labelled_texts))
    num_val = max(1, int(len(order) * LABELS_ONLY_VALIDATION))
    val, train = order[:num_val], order[num_val:]

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
        _labelled_dataset(splits.labelled_texts[train], splits.labelled_labels[train], config, shuffle=True),
        validation_data=_labelled_dataset(splits.labelled_texts[val], splits.labelled_labels[val], config, shuffle=False),
        epochs=max_epochs,
        callbacks=[stop], verbose=progress.keras_verbose(verbose), shuffle=False,  # the dataset shuffles itself
    )


def _cosine(config, num_rows):
    steps = int(np.ceil(num_rows / config.batch_size)) * config.epochs
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=max(steps, 1))


def accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


def agreement(logits_a, logits_b):
    return float(np.mean(np.argmax(logits_a, axis=-1) == np.argmax(logits_b, axis=-1)))
