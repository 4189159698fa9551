"""Teacher labelling of a corpus too big for memory, into sharded TFRecord files, and reading them back.

Label-scarce does not mean data-scarce: the unlabelled pool may hold millions of
texts, and running the BERT teacher over them is the dominant cost. `label_corpus`
streams texts from `.txt`, `.tsv`, `.csv` and `.jsonl` files (`data.iter_rows`)
and writes the teacher's logits beside each text into

    <out_dir>/shard-00003-of-00016.tfrecord   tf.train.Example: text, teacher_logits, label
    <out_dir>/shard-00003-of-00016.json       sidecar: rows, teacher fingerprint and runtime, corpus, content key

Row i of the corpus (blank rows skipped, files in the order given) goes to shard
`i % num_shards`, so every shard is a spread sample of the corpus and shards are
within one row of each other in size. Independent processes (or machines) split
the work with `shard_indices`; each shard is labelled in chunks of `CHUNK_ROWS`
of its own rows, so a shard's logits are bit-identical whichever process wrote it
and whatever other shards that process wrote (on the same kind of device;
`teacher.predictor` explains why this needs one shape-generic graph).

A process holds one chunk per shard it is writing, and writes at most 32 shards per
pass over the corpus (re-reading it for the next 32), so its memory stays bounded.
A shard is written to a temporary file and renamed into place, and its sidecar
is written after it: a shard with a sidecar is finished, and a rerun skips it
unless the teacher or the corpus (paths, sizes, modification times) changed.
The corpus is parsed once before the teacher starts, so a bad row fails in
seconds, not after hours of labelling, and leaves no shard behind.

`open_shards` and `dataset` read shards back for `distill`: a `tf.data` pipeline
that interleaves the files, shuffles through a bounded buffer, mixes in the few
labelled rows, batches and tokenises, so memory stays flat however many rows
there are.

Example:

```python
teacher = teacher_lib.load("runs/sst2/teacher")
label_corpus(teacher, ["../shared/data/sst2/train.tsv"], "runs/sst2/transfer", num_shards=4)
shards = open_shards("runs/sst2/transfer")
print(shards.total_rows, shards.files[:2])
```
"""

import contextlib
import dataclasses
import glob
import itertools
import os
import re
import time

import numpy as np

from kdistill import data, io, keys, progress
from kdistill import teacher as teacher_lib, tokenizer as tokenizer_lib
from kdistill.errors import KdistillError

FORMAT = 2  # 2: the sidecar holds the records' `keys.Digest` as "key"
# Rows of one shard labelled per teacher call: big enough for length bucketing to fill
# batches with texts of similar length, small enough to keep memory flat.
CHUNK_ROWS = 2048
# Texts one process holds while labelling (a chunk for each shard it writes at once).
MAX_BUFFERED_ROWS = 32 * CHUNK_ROWS
SHARD_FILE = re.compile(r"^shard-(\d{5})-of-(\d{5})\.tfrecord$")
# Files read at once when streaming shards back, and the rows a shuffle buffer holds.
CYCLE_LENGTH = 8
SHUFFLE_BUFFER = 16384


def shard_stem(index, count):
    return f"shard-{index:05d}-of-{count:05d}"


def shard_paths(out_dir, index, count):
    """The shard's TFRecord file and its JSON sidecar."""
    stem = os.path.join(out_dir, shard_stem(index, count))
    return stem + ".tfrecord", stem + ".json"


def expand_inputs(inputs):
    """Files named by `inputs`: paths, globs, or folders (their .txt/.tsv/.csv/.jsonl files, sorted)."""
    files = []
    for spec in inputs:
        if os.path.isdir(spec):
            found = sorted(
                os.path.join(spec, name) for name in os.listdir(spec)
                if os.path.splitext(name)[1].lower() in data.STREAM_EXTENSIONS
            )
        elif any(c in spec for c in "*?["):
            found = sorted(glob.glob(spec))
        else:
            found = [spec] if os.path.isfile(spec) else []
        if not found:
            raise KdistillError(f"--input={spec}: no such file, or no .txt/.tsv/.csv/.jsonl file there; check the path")
        files += found
    return files


def corpus_identity(files, encoding="utf-8", keep_labels=False):
    """What a shard was made from: each file's path, size and modification time, and how it was read."""
    sources = []
    for path in files:
        stat = os.stat(path)
        sources.append({"path": os.path.abspath(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return {"sources": sources, "encoding": encoding, "keep_labels": bool(keep_labels)}


# How many of the corpus' first texts the float32 teacher labels too, under runtime "auto", to check a faster one.
AGREEMENT_TEXTS = 1000


def label_corpus(
    teacher, inputs, out_dir, num_shards=1, shard_indices=None, encoding="utf-8", keep_labels=False,
    batch_size=64, chunk_rows=CHUNK_ROWS, predict=None, verbose=True, runtime=teacher_lib.TENSORFLOW, cache_dir=None,
):
    """Labels the texts of `inputs` with `teacher` into `num_shards` TFRecord shards in `out_dir`.

    Args:
        teacher: the frozen teacher (`teacher.load`).
        inputs: files, globs or folders of text (see `expand_inputs`).
        num_shards: how many shards the corpus is split into (row i -> shard i % num_shards).
        shard_indices: the shards this call writes (default all); other processes write the rest.
        keep_labels: write the file's labels (class ids) too; by default every row is
            unlabelled (-1), as the label-scarce setting needs.
        predict: `texts -> logits`; default `teacher.predictor(teacher, batch_size, runtime=runtime)` (one device).
        runtime: how the teacher runs (`teacher.RUNTIMES`, or "auto": `teacher.checked_runtime` on the corpus'
            first `AGREEMENT_TEXTS` texts); shards labelled in another runtime are labelled again.
        cache_dir: where the int8 teacher is written once (the teacher's folder); default a temporary folder.

    Returns:
        A summary: rows written, shards labelled and skipped, seconds, texts per second.
    """
    start = time.time()
    if num_shards < 1:
        raise KdistillError(f"--num_shards={num_shards}: must be at least 1")
    shard_indices = list(range(num_shards)) if shard_indices is None else sorted(set(shard_indices))
    bad = [i for i in shard_indices if not 0 <= i < num_shards]
    if bad:
        raise KdistillError(f"--shard_index={bad[0]}: not in 0..{num_shards - 1} (--num_shards={num_shards})")
    files = expand_inputs(inputs)
    if runtime == "auto":
        # Every process of a split run checks the same first texts with the same teacher, so all choose alike.
        sample = [text for text, _ in itertools.islice(_rows(files, encoding, False, teacher.num_classes),
                                                       AGREEMENT_TEXTS)]
        checked = teacher_lib.checked_runtime(teacher, sample, "auto", cache_dir, where="sample")
    else:
        checked = {"runtime": teacher_lib.labelling_runtime(runtime)}  # an unknown name is a one-line error
    runtime = checked["runtime"]
    identity = {
        "format": FORMAT, "num_shards": num_shards, "num_classes": int(teacher.num_classes),
        "teacher": teacher_lib.fingerprint(teacher, []), "runtime": runtime,
        "corpus": corpus_identity(files, encoding, keep_labels),
    }
    pending = [i for i in shard_indices if not _finished(out_dir, i, num_shards, identity, verbose)]
    summary = {"out_dir": out_dir, "num_shards": num_shards, "labelling": checked, "labelled_shards": pending,
               "skipped_shards": [i for i in shard_indices if i not in pending], "rows": 0}
    if not pending:
        summary["seconds"] = round(time.time() - start, 2)
        return summary
    # Parse everything first: a bad row must fail before the teacher has spent hours.
    counts = _count_rows(files, encoding, keep_labels, num_shards, teacher.num_classes)
    if counts.sum() == 0:
        raise KdistillError(f"{', '.join(files)}: no text at all; give files with at least one non-blank row")
    predict = predict or teacher_lib.predictor(teacher, batch_size, runtime=runtime, cache_dir=cache_dir)
    total = int(sum(counts[i] for i in pending))
    if verbose:
        print(f"[label] {total:,} texts into shards {_ranges(pending)} of {num_shards} -> {out_dir}", flush=True)
    bar = progress.bar(total, unit_name="text") if verbose else None
    for index in pending:
        _remove_stale_temporaries(out_dir, index, num_shards)
    written = {}
    # Shards are written a group at a time, re-reading the corpus per group, so a process that
    # writes many shards buffers at most MAX_BUFFERED_ROWS texts (reading is cheap; the teacher is not).
    group_size = max(1, MAX_BUFFERED_ROWS // chunk_rows)
    for group in (pending[i : i + group_size] for i in range(0, len(pending), group_size)):
        written.update(_write_shards(group, files, encoding, keep_labels, teacher.num_classes, out_dir, num_shards,
                                     predict, chunk_rows, bar))
        # The sidecars come last: a shard counts as finished only once its records are in place.
        for index in group:
            writer = written[index]
            path, sidecar = shard_paths(out_dir, index, num_shards)
            io.write_json({
                **identity, "shard": index, "rows": writer.rows, "labelled_rows": writer.labelled_rows,
                "bytes": os.path.getsize(path), "key": writer.digest.hexdigest(),
                "seconds": round(writer.seconds, 2),
            }, sidecar)
    summary["rows"] = sum(w.rows for w in written.values())
    summary["seconds"] = round(time.time() - start, 2)
    summary["texts_per_second"] = round(summary["rows"] / max(summary["seconds"], 1e-9), 1)
    return summary


def _write_shards(indices, files, encoding, keep_labels, num_classes, out_dir, num_shards, predict, chunk_rows, bar):
    """Labels shards `indices` in one pass over the corpus; each file appears only when all are done."""
    writers = {}
    with contextlib.ExitStack() as stack:
        for index in indices:
            path, _ = shard_paths(out_dir, index, num_shards)
            tmp = stack.enter_context(io.atomic_path(path))  # renamed into place only if all goes well
            writers[index] = stack.enter_context(_ShardWriter(tmp, index, predict))
        for i, (text, label) in enumerate(_rows(files, encoding, keep_labels, num_classes)):
            writer = writers.get(i % num_shards)
            if writer is not None and writer.add(text, label, chunk_rows) and bar:
                bar.add(chunk_rows)
        for writer in writers.values():
            done = writer.flush()
            if bar and done:
                bar.add(done)
    return writers


class _ShardWriter:
    """Collects one shard's rows and labels them a chunk at a time into its TFRecord file."""

    def __init__(self, path, index, predict):
        self.path, self.index, self.predict = path, index, predict
        self.texts, self.labels = [], []
        self.rows = self.labelled_rows = 0
        self.seconds = 0.0
        self.digest = keys.Digest()

    def __enter__(self):
        import tensorflow as tf

        self.writer = tf.io.TFRecordWriter(self.path)
        return self

    def __exit__(self, *exc):
        self.writer.close()

    def add(self, text, label, chunk_rows):
        """Adds a row; labels and writes a full chunk (returns True when it did)."""
        self.texts.append(text)
        self.labels.append(label)
        if len(self.texts) < chunk_rows:
            return False
        self.flush()
        return True

    def flush(self):
        if not self.texts:
            return 0
        start = time.time()
        logits = np.asarray(self.predict(self.texts), np.float32)
        for text, row_logits, label in zip(self.texts, logits, self.labels):
            record = serialize(text, row_logits, label)
            self.writer.write(record)
            self.digest.update(record)
        done = len(self.texts)
        self.rows += done
        self.labelled_rows += sum(label >= 0 for label in self.labels)
        self.texts, self.labels = [], []
        self.seconds += time.time() - start
        return done


def serialize(text, logits, label=-1):
    """One row as a serialised `tf.train.Example` (text bytes, float32 logits, int label, -1 if none)."""
    import tensorflow as tf

    feature = tf.train.Feature
    return tf.train.Example(features=tf.train.Features(feature={
        "text": feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")])),
        "teacher_logits": feature(float_list=tf.train.FloatList(value=np.asarray(logits, np.float32))),
        "label": feature(int64_list=tf.train.Int64List(value=[int(label)])),
    })).SerializeToString(deterministic=True)  # map keys sorted: same bytes in every process


def _rows(files, encoding, keep_labels, num_classes):
    """(text, label id or -1) of every row of every file, in order."""
    for path in files:
        for row, text, label in data.iter_rows(path, encoding, with_labels=keep_labels):
            yield text, _label_id(path, row, label, num_classes) if keep_labels else -1


def _label_id(path, row, label, num_classes):
    if label is None:
        return -1
    key = str(label).strip()
    if not (key.lstrip("-").isdigit() and -1 <= int(key) < num_classes):
        raise KdistillError(
            f"{path}:{row}: label {key!r} is not a class id in 0..{num_classes - 1} (or -1); "
            "fix the row, or drop --keep_labels"
        )
    return int(key)


def _count_rows(files, encoding, keep_labels, num_shards, num_classes):
    counts = np.zeros(num_shards, dtype=np.int64)
    for i, _ in enumerate(_rows(files, encoding, keep_labels, num_classes)):
        counts[i % num_shards] += 1
    return counts


def _finished(out_dir, index, count, identity, verbose):
    """Whether shard `index` is in place, complete, and made from this teacher and corpus."""
    path, sidecar = shard_paths(out_dir, index, count)
    if not os.path.exists(sidecar):
        return False
    try:
        written = io.read_json(sidecar)
    except (OSError, ValueError):
        written = {}
    same = all(written.get(key) == value for key, value in identity.items())
    if same and os.path.exists(path) and os.path.getsize(path) == written.get("bytes"):
        if verbose:
            print(f"[label] {os.path.basename(path)}: finished already ({written['rows']:,} rows); skipped", flush=True)
        return True
    if verbose:
        changed = [k for k, v in identity.items() if written.get(k) != v]
        why = f"made with another {changed[0]}" if changed else "its record file is missing or changed"
        print(f"[label] {os.path.basename(path)}: {why}; labelling it again", flush=True)
    return False


def _remove_stale_temporaries(out_dir, index, count):
    """Temporary files a killed run left for this shard (io.atomic_path's naming)."""
    for path in glob.glob(os.path.join(out_dir, f".{shard_stem(index, count)}.*.tmp.tfrecord")):
        with contextlib.suppress(OSError):
            os.remove(path)


def _ranges(indices):
    return f"{indices[0]}..{indices[-1]}" if len(indices) > 2 and indices == list(range(indices[0], indices[-1] + 1)) \
        else ",".join(map(str, indices))


def worker_shards(num_shards, worker_index, num_workers):
    """The shards worker `worker_index` of `num_workers` labels: every `num_workers`-th one."""
    return list(range(worker_index, num_shards, num_workers))


@dataclasses.dataclass
class Shards:
    """A set of finished shards: files, their row counts, and what made them."""

    files: list
    rows: list
    num_classes: int
    teacher: str  # the teacher's fingerprint
    key: str  # changes with any record of any shard
    labelled_rows: int = 0  # rows that carry a label (written with --keep_labels)

    @property
    def total_rows(self):
        return int(sum(self.rows))


def open_shards(spec):
    """The finished shards that `spec` names: a folder, a glob, or a comma-separated list of them.

    Every shard needs its sidecar, every shard of a set (`-of-N`) must be there, and
    all must come from one teacher; anything else is a one-line error saying what to run.
    """
    files = []
    for part in [p for p in str(spec).split(",") if p]:
        if os.path.isdir(part):
            found = sorted(glob.glob(os.path.join(part, "shard-*-of-*.tfrecord")))
        else:
            found = sorted(glob.glob(part))
        if not found:
            raise KdistillError(f"--transfer_shards={part}: no shard-*-of-*.tfrecord files; run apps.label first")
        files += found
    rows, teachers, classes, digest, labelled = [], set(), set(), keys.Digest(), 0
    sets = {}
    for path in files:
        match = SHARD_FILE.match(os.path.basename(path))
        sidecar = os.path.splitext(path)[0] + ".json"
        if not match or not os.path.exists(sidecar):
            raise KdistillError(
                f"{path}: not a finished shard (no sidecar {os.path.basename(sidecar)}); rerun apps.label to finish it"
            )
        meta = io.read_json(sidecar)
        if meta.get("format") != FORMAT or os.path.getsize(path) != meta.get("bytes"):
            raise KdistillError(f"{path}: the shard does not match its sidecar (size or format); rerun apps.label")
        index, count = int(match.group(1)), int(match.group(2))
        sets.setdefault((os.path.dirname(os.path.abspath(path)), count), set()).add(index)
        rows.append(int(meta["rows"]))
        labelled += int(meta.get("labelled_rows", 0))
        teachers.add(meta["teacher"])
        classes.add(int(meta["num_classes"]))
        digest.update(meta["key"])
    for (folder, count), present in sets.items():
        missing = sorted(set(range(count)) - present)
        if missing:
            raise KdistillError(
                f"{folder}: shards {_ranges(missing)} of {count} are missing; run apps.label --num_shards={count} "
                f"--shard_index=<each missing one> (or without --shard_index)"
            )
    if len(teachers) > 1 or len(classes) > 1:
        raise KdistillError(
            f"--transfer_shards={spec}: the shards come from {len(teachers)} different teachers; "
            "label them all with the same teacher"
        )
    return Shards(files, rows, classes.pop(), teachers.pop(), digest.hexdigest(), labelled)


def check_teacher(shards, teacher, where):
    """A one-line error unless `shards` were labelled by `teacher` (same weights and preprocessing)."""
    if shards.teacher != teacher_lib.fingerprint(teacher, []):
        raise KdistillError(
            f"{where}: the transfer shards were labelled by another teacher than this one; "
            "relabel them with apps.label --teacher_dir=<this teacher>"
        )
    if shards.num_classes != teacher.num_classes:
        raise KdistillError(f"{where}: shards have {shards.num_classes} classes, the teacher {teacher.num_classes}")


def _features(num_classes):
    import tensorflow as tf

    return {
        "text": tf.io.FixedLenFeature([], tf.string),
        "teacher_logits": tf.io.FixedLenFeature([num_classes], tf.float32),
        "label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }


def text_batches(shards, batch_size=4096):
    """The shards' texts as string tensors of up to `batch_size`, file by file (to count vocabulary)."""
    import tensorflow as tf

    features = {"text": tf.io.FixedLenFeature([], tf.string)}
    records = tf.data.TFRecordDataset(shards.files)
    batches = records.batch(batch_size).map(lambda r: tf.io.parse_example(r, features)["text"])
    yield from batches.prefetch(2)


def read_all(shards):
    """Every record of `shards` as numpy arrays (texts, logits, labels), in file order: for tests and small sets."""
    import tensorflow as tf

    records = tf.data.TFRecordDataset(shards.files).batch(4096)
    parsed = [tf.io.parse_example(r, _features(shards.num_classes)) for r in records]
    texts = np.concatenate([p["text"].numpy() for p in parsed]).astype(object)
    return (
        np.array([t.decode("utf-8") for t in texts], dtype=object),
        np.concatenate([p["teacher_logits"].numpy() for p in parsed]),
        np.concatenate([p["label"].numpy() for p in parsed]).astype(np.int32),
    )


def dataset(
    shards, batch_size, epoch_seed, tokenizer=None, labelled=None, shuffle_buffer=SHUFFLE_BUFFER,
    input_context=None, drop_remainder=False, bucket_batches=0,
):
    """`({"token_ids" or "text", "teacher_logits"}, label)` batches streamed from `shards`.

    Args:
        batch_size: rows per batch (per replica when `input_context` is given).
        epoch_seed: a function giving the seed of the epoch about to start
            (`io.EpochOrder`), read as each epoch's iterator is made.
        tokenizer: the student's tokenizer; with it the batches carry token ids, not text.
        labelled: `(texts, logits, labels)` of the labelled rows, spread through each epoch.
        input_context: `tf.distribute.InputContext` of this input pipeline: each of
            several workers reads its own share of files (of rows, if there are
            fewer files than workers).
        bucket_batches: when not 0, each run of this many batches is drawn from rows sorted by
            text length, and the run's batches come in a random order: batches of similar
            length, cut to their longest text, for a CPU's sake (`training.transfer_dataset`
            does the same over a whole epoch held in memory).

    Memory is bounded by `shuffle_buffer` rows and a few batches, whatever the row count.
    """
    import tensorflow as tf

    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline = input_context.input_pipeline_id if input_context else 0
    files, rows = list(shards.files), list(shards.rows)
    by_file = pipelines > 1 and len(files) >= pipelines
    if by_file:
        files, rows = files[pipeline::pipelines], rows[pipeline::pipelines]
        own_rows = sum(rows)
    else:
        own_rows = len(range(pipeline, sum(rows), pipelines))
    labelled_records = []
    if labelled is not None:
        texts, logits, labels = labelled
        labelled_records = [serialize(str(t), l, y) for t, l, y in zip(texts, logits, labels)][pipeline::pipelines]
    total = own_rows + len(labelled_records)
    text_only = {"text": tf.io.FixedLenFeature([], tf.string)}

    def one_epoch(seed):
        # Stateless random ops keyed by (epoch seed, purpose): tf.data's own seeded ops cannot
        # take a seed that is only known when the epoch starts.
        def keys(count, purpose):
            return tf.random.stateless_uniform([count], seed=tf.stack([seed, tf.cast(purpose, tf.int64)]))

        def sorted_run(i, block):
            # Bytes stand in for word pieces: tokenising twice would cost more than the sort saves.
            lengths = tf.strings.length(tf.io.parse_example(block, text_only)["text"])
            block = tf.gather(block, tf.argsort(lengths, stable=True))
            full = tf.shape(block)[0] // batch_size
            # Only whole batches are reordered, and an epoch's partial last one stays last, so the
            # `batch` below cuts exactly these batches. Negative purposes: distinct from the shuffles' keys.
            batches = tf.reshape(block[: full * batch_size], [full, batch_size])
            batches = tf.gather(batches, tf.argsort(keys(full, -1 - i)))
            return tf.concat([tf.reshape(batches, [-1]), block[full * batch_size :]], 0)

        names = tf.data.Dataset.from_tensor_slices(tf.gather(files, tf.argsort(keys(len(files), 0))))
        records = names.interleave(
            lambda name: tf.data.TFRecordDataset(name), cycle_length=min(CYCLE_LENGTH, len(files)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
        )
        if pipelines > 1 and not by_file:
            records = records.shard(pipelines, pipeline)
        # A block shuffle: each run of `shuffle_buffer` records is permuted, so memory holds one block.
        records = records.batch(shuffle_buffer).enumerate().map(
            lambda i, block: tf.gather(block, tf.argsort(keys(tf.shape(block)[0], 3 + 2 * i)))
        ).unbatch()
        if labelled_records:
            # Drawn in proportion to the sizes, so the few labelled rows spread over the epoch
            # instead of arriving together.
            extra = tf.constant(labelled_records)
            extra = tf.data.Dataset.from_tensor_slices(tf.gather(extra, tf.argsort(keys(len(labelled_records), 1))))
            share = len(labelled_records) / total
            choices = tf.data.Dataset.counter().map(
                lambda i: tf.cast(keys(1, 4 + 2 * i)[0] < share, tf.int64)
            )
            records = tf.data.Dataset.choose_from_datasets([records, extra], choices, stop_on_empty_dataset=False)
        if bucket_batches:
            records = records.batch(batch_size * bucket_batches).enumerate().map(sorted_run).unbatch()
        return records

    features = _features(shards.num_classes)

    def parse(serialized):
        example = tf.io.parse_example(serialized, features)
        x = {"teacher_logits": example["teacher_logits"]}
        if tokenizer is not None:
            # TPUs compile for one batch shape (`drop_remainder`): only elsewhere is each batch cut to its longest text.
            ids = tokenizer(example["text"])
            x["token_ids"] = ids if drop_remainder else tokenizer_lib.trim_padding(ids)
        else:
            x["text"] = example["text"]
        return x, tf.cast(example["label"], tf.int32)

    # The seed is fetched when the epoch's iterator is made, after Keras has told the
    # EpochOrder which epoch it is: a resumed run reads its epochs in the same order.
    seeds = tf.data.Dataset.from_generator(
        lambda: iter([np.int64(epoch_seed())]), output_signature=tf.TensorSpec((), tf.int64)
    )
    batches = seeds.flat_map(one_epoch).batch(batch_size, drop_remainder=drop_remainder)
    batches = batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    num_batches = total // batch_size if drop_remainder else -(-total // batch_size)
    batches = batches.apply(tf.data.experimental.assert_cardinality(num_batches))
    return batches.prefetch(tf.data.AUTOTUNE)
