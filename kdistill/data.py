"""Labelled text-classification data and the label-scarce split.

`load(spec, num_labels=...)` reads a dataset and returns `Splits`: a small,
seeded, stratified labelled sample of `train`, the rest of `train` as
unlabelled text (its labels dropped), and the `dev` split for evaluation.

A spec is either a TensorFlow Datasets name prefixed with `tfds:` (for example
`tfds:glue/sst2`, `tfds:ag_news_subset`) or a local path:

- a folder holding `train.*` and `dev.*` (or `validation.*` / `test.*`) files,
  and optionally `classes.txt` (one class name per line, in label order);
- a single labelled file, from which a seeded, stratified 20% (at most 1,000 rows) is held out as dev.

Files may be TSV or CSV, with or without a header row, or JSONL; the text and
label columns are recognised by name or, without a header, by their content.
A `.txt` file (one text per line) is unlabelled text, accepted as `unlabelled`.

Example:

```python
splits = load("../shared/data/sst2", num_labels=100, seed=0, max_unlabelled=1000)
print(len(splits.labelled_texts), len(splits.unlabelled_texts), splits.class_names)
```
"""

import codecs
import csv
import dataclasses
import itertools
import json
import os

import numpy as np

from kdistill import keys
from kdistill.errors import KdistillError

TEXT_COLUMNS = ("sentence", "text", "content", "review", "document", "description", "title")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "y")
DEV_NAMES = ("dev", "validation", "valid", "test")
LABELLED_EXTENSIONS = (".tsv", ".csv", ".jsonl")
# A single labelled file gives up this share of its rows, stratified, as dev: 10% of 800 rows left 80, which
# move accuracy 1.25 points each; 20% keeps 160 (the report's intervals say how sure that is).
HELD_OUT_DEV_FRACTION = 0.2
HELD_OUT_DEV_MAX_ROWS = 1000


@dataclasses.dataclass
class Splits:
    labelled_texts: np.ndarray
    labelled_labels: np.ndarray
    unlabelled_texts: np.ndarray
    dev_texts: np.ndarray
    dev_labels: np.ndarray
    class_names: list
    empty_texts_dropped: int = 0  # labelled rows (train or dev) whose text was empty or blank
    labels_asked: int = None  # --num_labels when train had fewer rows and all of them were taken
    dev_source: str = "the dataset's dev split"  # where the dev rows come from, for the report

    @property
    def num_classes(self):
        return len(self.class_names)

    def describe(self):
        dropped = f"; {self.empty_texts_dropped} rows with empty text dropped" if self.empty_texts_dropped else ""
        every = (f" (all of train: --num_labels={self.labels_asked} asked for more than it has)"
                 if self.labels_asked else "")
        return (
            f"{len(self.labelled_texts)} labelled{every}, {len(self.unlabelled_texts)} unlabelled, "
            f"{len(self.dev_texts)} dev texts ({self.dev_source}); {self._classes()}{dropped}"
        )

    def _classes(self):
        names = self.class_names
        shown = ", ".join(names if len(names) <= 12 else [*names[:5], "...", *names[-2:]])
        return f"{len(names)} classes: {shown}"


@dataclasses.dataclass
class LabelledData:
    texts: list
    labels: list  # raw label values as read: ints or strings
    source: str = "data"  # the file (or tfds split) the rows came from, for messages
    rows: list = None  # each text's row number in `source` (1-based, header included)
    empty_texts: int = 0  # rows skipped because their text was empty or only whitespace

    def row(self, index):
        return self.rows[index] if self.rows is not None else index + 1

    def subset(self, index):
        labels = None if self.labels is None else [self.labels[i] for i in index]
        return LabelledData([self.texts[i] for i in index], labels, self.source, [self.row(i) for i in index])


def load(spec, num_labels, seed=0, max_unlabelled=None, unlabelled=None, encoding="utf-8", validation_rows=0):
    """Reads `spec` and makes the label-scarce split.

    Args:
        spec: `tfds:<name>` or a local folder or file.
        num_labels: how many rows of train keep their label (stratified by class); None, or more than
            train holds, keeps every row's label (the unlabelled pool is then `unlabelled` alone).
        seed: seeds the labelled sample and the unlabelled cap.
        max_unlabelled: keep at most this many unlabelled texts (a seeded sample).
        unlabelled: optional extra unlabelled text: a `.txt` file or any labelled file.
        encoding: the text encoding of local files (`latin-1` for many older corpora).
        validation_rows: when positive, a seeded stratified sample of this many rows of train (outside the
            labelled sample) leaves the unlabelled pool and stands in for dev, so that recipes and rules are
            chosen without looking at dev.

    Rows whose text is empty or blank are dropped (there is nothing to learn from
    or classify) and counted in `Splits.empty_texts_dropped`.
    """
    train, dev, class_names, dev_source = _read_spec(spec, seed, encoding)
    train_labels = _encode_labels(train, class_names)
    dev_labels = _encode_labels(dev, class_names)
    _check_every_class_in_train(train, train_labels, class_names)
    labels_asked = num_labels if num_labels is not None and num_labels > len(train_labels) else None
    labelled_idx, unlabelled_idx = stratified_split(train_labels, num_labels, seed, spec)
    train_texts = np.array(train.texts, dtype=object)
    dev_texts = np.array(dev.texts, dtype=object)
    if validation_rows:
        # At most a quarter of the pool, so that a small pool (CR's 2,271 at N=1000) keeps most of its texts.
        validation_rows = min(validation_rows, len(unlabelled_idx) // 4)
        picked, rest = stratified_split(train_labels[unlabelled_idx], validation_rows, seed + 2, spec)
        dev_texts, dev_labels = train_texts[unlabelled_idx[picked]], train_labels[unlabelled_idx[picked]]
        unlabelled_idx = unlabelled_idx[rest]
        dev_source = f"validation: {len(picked)} rows of train outside the labelled sample, stratified"
    unlabelled_texts = train_texts[unlabelled_idx]
    if unlabelled:
        unlabelled_texts = np.concatenate([unlabelled_texts, read_texts(unlabelled, encoding)])
    if max_unlabelled is not None and len(unlabelled_texts) > max_unlabelled:
        keep = np.random.default_rng(seed + 1).choice(
            len(unlabelled_texts), max_unlabelled, replace=False
        )
        unlabelled_texts = unlabelled_texts[np.sort(keep)]
    return Splits(
        labelled_texts=train_texts[labelled_idx],
        labelled_labels=train_labels[labelled_idx],
        unlabelled_texts=unlabelled_texts,
        dev_texts=dev_texts,
        dev_labels=dev_labels,
        class_names=class_names,
        empty_texts_dropped=train.empty_texts + dev.empty_texts,
        labels_asked=labels_asked,
        dev_source=dev_source,
    )


def stratified_split(labels, num_labels, seed, source="data"):
    """Indices of a seeded labelled sample of `num_labels` rows, class shares kept, and the rest.

    Every class gets at least one labelled row; the remaining quota goes to the
    classes in proportion to their size (largest remainders first). `num_labels` None, or at
    least the number of rows, labels every row.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if num_labels is None or num_labels >= len(labels):
        return np.arange(len(labels)), np.zeros(0, dtype=int)
    if num_labels < len(classes):
        raise KdistillError(
            f"{source}: --num_labels={num_labels} is fewer than the {len(classes)} classes; "
            "every class needs at least one labelled example"
        )
    exact = counts / counts.sum() * num_labels
    quota = np.maximum(np.floor(exact).astype(int), 1)
    remainders = exact - np.floor(exact)
    for i in np.argsort(-remainders):
        if quota.sum() >= num_labels:
            break
        quota[i] += 1
    while quota.sum() > num_labels:  # the minimum of one per class overshot: take from the biggest
        quota[np.argmax(quota)] -= 1
    rng = np.random.default_rng(seed)
    labelled = []
    for cls, take in zip(classes, quota):
        members = np.flatnonzero(labels == cls)
        labelled.append(rng.permutation(members)[:take])
    labelled = np.sort(np.concatenate(labelled))
    unlabelled = np.setdiff1d(np.arange(len(labels)), labelled)
    return labelled, unlabelled


def read_texts(path, encoding="utf-8"):
    """Texts of a file: one per line for `.txt`, the text column for labelled formats."""
    if path.endswith(".txt"):
        return np.array(read_lines(path, encoding), dtype=object)
    return np.array(read_labelled_file(path, require_labels=False, encoding=encoding).texts, dtype=object)


def read_lines(path, encoding="utf-8"):
    """The non-blank lines of a text file: one text each."""
    return [text for _, text, _ in _records(path, encoding, as_lines=True) if text.strip()]


def read_labelled_file(path, require_labels=True, encoding="utf-8"):
    """Reads a TSV, CSV or JSONL file into texts and raw label values; rows with blank text are skipped.

    The same reader as `iter_rows` (one parser per format), gathered in memory."""
    if not os.path.isfile(path):
        raise KdistillError(f"{path}: no such file; check the --dataset path")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".jsonl", ".tsv", ".csv"):
        raise KdistillError(
            f"{path}: unsupported file type {ext!r}; use .tsv, .csv or .jsonl (.txt for unlabelled text)"
        )
    texts, labels, rows, empty = [], [], [], 0
    for row, text, label in _records(path, encoding, with_labels=True):
        if not text.strip():
            empty += 1
            continue
        texts.append(text)
        labels.append(label)
        rows.append(row)
    if not texts:
        if _is_blank(path, encoding):
            raise KdistillError(f"{path}: the file is empty; give a file with at least one labelled row")
        what = "every row's text is empty" if empty else "only a header, no rows"
        raise KdistillError(f"{path}: {what}; give a file with at least one row of text")
    has_labels = any(label is not None for label in labels)
    if require_labels and not has_labels:
        raise KdistillError(f"{path}: no label column found; add a 'label' column")
    # A labelled file labels every row: an empty label would otherwise become a class named ''.
    blank = next((i for i, label in enumerate(labels) if label is None or not str(label).strip()), None)
    if has_labels and blank is not None:
        raise KdistillError(
            f"{path}:{rows[blank]}: the row has no label; label it, or put unlabelled texts in a file of their own "
            "and pass it as --unlabelled"
        )
    return LabelledData(texts, labels if has_labels else None, path, rows, empty)


def _is_blank(path, encoding):
    return not any(text.strip() for _, text, _ in _records(path, encoding, as_lines=True))


def _is_header(first_row):
    names = {c.strip().lower() for c in first_row}
    return bool(names & set(TEXT_COLUMNS + LABEL_COLUMNS))


def _pick_columns(header, body, width):
    if header:
        text_col = next((header.index(n) for n in TEXT_COLUMNS if n in header), None)
        label_col = next((header.index(n) for n in LABEL_COLUMNS if n in header), None)
        if text_col is not None and label_col is not None:
            return text_col, label_col
    # Without names, the text is the longest column and the label the one with fewest values.
    sample = body[:2000]
    mean_length = [np.mean([len(r[c]) if c < len(r) else 0 for r in sample]) for c in range(width)]
    distinct = [len({r[c] for r in sample if c < len(r)}) for c in range(width)]
    text_col = int(np.argmax(mean_length))
    label_col = min((c for c in range(width) if c != text_col), key=lambda c: distinct[c])
    return text_col, label_col


def _encode_labels(data, class_names):
    """Maps raw label values to class indices, naming the first row it cannot map."""
    index = {name: i for i, name in enumerate(class_names)}
    encoded = np.empty(len(data.labels), dtype=np.int32)
    for row, value in enumerate(data.labels):
        key = str(value).strip()
        if key in index:
            encoded[row] = index[key]
        elif key.lstrip("-").isdigit() and 0 <= int(key) < len(class_names):
            encoded[row] = int(key)
        else:
            raise KdistillError(
                f"{data.source}:{data.row(row)}: label {key!r} is not one of the classes "
                f"{class_names}; fix the row or the class list"
            )
    return encoded


def _check_every_class_in_train(train, labels, class_names):
    """A class that train never shows could never be learnt, nor get its labelled example."""
    missing = [name for i, name in enumerate(class_names) if not np.any(labels == i)]
    if missing:
        raise KdistillError(
            f"{train.source}: class{'es' if len(missing) > 1 else ''} {missing} of the class list "
            f"{class_names} {'have' if len(missing) > 1 else 'has'} no row in train; add labelled rows "
            "of it or remove it from the class list (classes.txt)"
        )


def _class_names(train, classes_file=None, encoding="utf-8"):
    if classes_file and os.path.isfile(classes_file):
        names = [line.strip() for line in read_lines(classes_file, encoding)]
        if not names:
            raise KdistillError(f"{classes_file}: no class names; write one name per line, in label order")
        return names
    values = sorted({str(v).strip() for v in train.labels})
    if all(v.lstrip("-").isdigit() for v in values):
        return [str(i) for i in range(max(int(v) for v in values) + 1)]
    return values


def _read_spec(spec, seed, encoding="utf-8"):
    if spec.startswith("tfds:"):
        return (*_read_tfds(spec[len("tfds:") :]), "the dataset's dev split")
    if os.path.isdir(spec):
        return (*_read_folder(spec, encoding), "the folder's dev file")
    if os.path.isfile(spec):
        return _read_single_file(spec, seed, encoding)
    raise KdistillError(
        f"{spec}: no such file or folder; give a local path or a tfds name like tfds:glue/sst2"
    )


def num_classes(spec, encoding="utf-8"):
    """How many classes `spec` holds: what a rule that depends on it (the distillation temperature's) resolves by."""
    return len(_read_spec(spec, 0, encoding)[2])


def identity(spec):
    """What `spec` reads, wherever it lives: a tfds name, or the content of the local files `load` reads (a
    folder's train, dev and classes files; a single file). Caches key a dataset by this, so a copy of the data
    at another path (another machine, another checkout) is the same dataset and an edited file is not."""
    if spec.startswith("tfds:"):
        return spec
    if os.path.isdir(spec):
        paths = [_find_file(spec, ("train",)), _find_file(spec, DEV_NAMES), os.path.join(spec, "classes.txt")]
    else:
        paths = [spec]
    digest = keys.Digest()
    for path in paths:
        if path and os.path.isfile(path):
            digest.update(os.path.basename(path))
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _find_file(folder, stems):
    for stem in stems:
        for ext in LABELLED_EXTENSIONS:
            path = os.path.join(folder, stem + ext)
            if os.path.isfile(path):
                return path
    return None


def _read_folder(folder, encoding="utf-8"):
    train_path = _find_file(folder, ("train",))
    dev_path = _find_file(folder, DEV_NAMES)
    if train_path is None or dev_path is None:
        raise KdistillError(
            f"{folder}: needs a train file and a dev file (train.tsv|csv|jsonl and "
            "dev/validation/test.tsv|csv|jsonl); add the missing one"
        )
    train = read_labelled_file(train_path, encoding=encoding)
    dev = read_labelled_file(dev_path, encoding=encoding)
    return train, dev, _class_names(train, os.path.join(folder, "classes.txt"), encoding)


def _read_single_file(path, seed, encoding="utf-8"):
    data = read_labelled_file(path, encoding=encoding)
    labels = np.array([str(label).strip() for label in data.labels], dtype=object)
    num_dev = min(max(int(round(len(labels) * HELD_OUT_DEV_FRACTION)), len(set(labels))), HELD_OUT_DEV_MAX_ROWS)
    dev_rows, train_rows = stratified_split(labels, num_dev, seed + 2, path)
    train, dev = data.subset(train_rows), data.subset(dev_rows)
    train.empty_texts = data.empty_texts
    share = f"{len(dev_rows) / len(labels):.0%}"
    return train, dev, _class_names(data), f"held out of {os.path.basename(path)}: {share}, stratified, seed {seed}"


def _read_tfds(name):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name)
        builder.download_and_prepare()
    except Exception as e:  # tfds raises many types for a missing name or no network
        raise KdistillError(
            f"tfds:{name}: could not load ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "check the name and network, or point --dataset at a local folder"
        ) from None
    splits = builder.info.splits
    dev_split = next((s for s in ("validation", "test") if s in splits), None)
    label_feature = builder.info.features["label"]
    text_keys = [k for k in TEXT_COLUMNS if k in builder.info.features]

    def read(split):
        texts, labels = [], []
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            # AG News carries title and description separately; the topic lives in both.
            parts = [example[k].decode("utf-8") for k in reversed(text_keys)]
            texts.append(" ".join(p for p in parts if p))
            labels.append(int(example["label"]))
        return LabelledData(texts, labels, f"tfds:{name}/{split}")

    train, dev = read("train"), read(dev_split)
    # GLUE's test split has label -1 everywhere; its validation split is the dev set.
    return train, dev, list(label_feature.names)


STREAM_EXTENSIONS = (".txt", ".tsv", ".csv", ".jsonl")


def iter_rows(path, encoding="utf-8", with_labels=False):
    """Yields `(row, text, label)` for each row of a `.txt`, `.tsv`, `.csv` or `.jsonl` file, one at a time.

    For corpora too big for memory: the file is decoded and parsed as it is read.
    Rows are numbered from 1 by line, a header included; rows with blank text are
    skipped. `label` is the raw label value when `with_labels` and the file has a
    label column, else None. Problems raise one-line `KdistillError`s naming the file
    and row. `read_labelled_file` gathers the same rows in memory.

    Example:

    ```python
    for row, text, _ in iter_rows("../shared/data/sst2/train.tsv"):
        ...
    ```
    """
    for row, text, label in _records(path, encoding, with_labels):
        if text.strip():
            yield row, text, label


def _records(path, encoding="utf-8", with_labels=False, as_lines=False):
    """`iter_rows`' rows, blank texts included (blank lines are not rows); `as_lines` reads any file as
    lines of text."""
    if not os.path.exists(path):
        raise KdistillError(f"{path}: no such file; check the path")
    ext = ".txt" if as_lines else os.path.splitext(path)[1].lower()
    if ext not in STREAM_EXTENSIONS:
        raise KdistillError(f"{path}: unsupported file type {ext!r}; use {', '.join(STREAM_EXTENSIONS)}")
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise KdistillError(f"--encoding={encoding}: unknown encoding; use a Python codec name like utf-8 or latin-1") from None
    # utf-8-sig drops a leading byte-order mark (Windows editors write one), which would otherwise
    # stick to the header's first name.
    file_encoding = "utf-8-sig" if codec == "utf-8" else codec
    try:
        # newline="" keeps csv's quoting of embedded line breaks intact; for .txt and .jsonl only "\n"
        # ends a line (str.splitlines() would also split on characters such as U+2028 that texts hold).
        with open(path, encoding=file_encoding, newline="" if ext in (".tsv", ".csv") else "\n") as f:
            if ext == ".txt":
                yield from _stream_lines(f, lambda row, line: (line, None))
            elif ext == ".jsonl":
                yield from _stream_lines(f, lambda row, line: _jsonl_record(path, row, line, with_labels))
            else:
                yield from _stream_table(path, f, "\t" if ext == ".tsv" else ",", with_labels)
    except UnicodeDecodeError:
        offset, row = _first_undecodable(path, codec)
        raise KdistillError(
            f"{path}: byte {offset} (row {row}) is not valid {codec}; re-save the file as UTF-8 "
            "or pass its encoding, e.g. --encoding=latin-1"
        ) from None
    except OSError as e:
        raise KdistillError(f"{path}: cannot read ({e.strerror}); check the path and its permissions") from None


def _stream_lines(f, parse):
    for row, line in enumerate(f, start=1):
        line = line.rstrip("\n").rstrip("\r")
        if line.strip():
            yield row, *parse(row, line)


def _jsonl_record(path, row, line, with_labels):
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise KdistillError(f"{path}:{row}: not valid JSON ({e.msg}); fix or drop the row") from None
    if not isinstance(record, dict):
        shape = '{"text": ..., "label": ...}' if with_labels else '{"text": ...}'
        raise KdistillError(f"{path}:{row}: not a JSON object; write one {shape} per line")
    text_key = next((k for k in TEXT_COLUMNS if k in record), None)
    if text_key is None:
        raise KdistillError(f"{path}:{row}: no text field; name it one of {', '.join(TEXT_COLUMNS)}")
    text = record[text_key]
    if text is not None and not isinstance(text, str):
        raise KdistillError(
            f"{path}:{row}: {text_key!r} holds {type(text).__name__} {json.dumps(text)[:40]}, not text; "
            "write it as a JSON string"
        )
    label_key = next((k for k in LABEL_COLUMNS if k in record), None) if with_labels else None
    return text or "", (record[label_key] if label_key else None)


def _stream_table(path, f, delimiter, with_labels):
    # Reviews can be long: lift csv's 128 KiB field limit so they are truncated by the tokenizer, not refused.
    csv.field_size_limit(2**31 - 1)
    # A tab-separated file has no quoting (IANA text/tab-separated-values): a text that starts with a
    # quote mark is a text, not a quoted field spanning lines. Reading TSV as CSV merged rows of
    # CLINC150 and SUBJ (15,000 rows read as 13,621).
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(f, delimiter=delimiter, quoting=quoting)

    def rows():
        try:
            for row in reader:
                if row:
                    yield reader.line_num, row
        except csv.Error as e:
            raise KdistillError(f"{path}:{reader.line_num}: unreadable row ({e}); fix the quoting of that row") from None

    rows = rows()
    # Columns are recognised from the header, or from the first rows (`_pick_columns`).
    sample = [r for _, r in zip(range(2000), rows)]
    if not sample:
        return
    header = None
    if _is_header(sample[0][1]):
        header = [c.strip().lower() for c in sample[0][1]]
        sample = sample[1:]
    width = max([len(r) for _, r in sample] + [len(header or [])])
    if width == 1:
        text_col, label_col = 0, None
    else:
        text_col, label_col = _pick_columns(header, [r for _, r in sample] or [header], width)
    needed = max(text_col, label_col if label_col is not None else 0)
    for row_number, row in itertools.chain(sample, rows):
        if len(row) <= needed:
            raise KdistillError(
                f"{path}:{row_number}: expected {width} columns, found {len(row)}; "
                "check the delimiter and quoting of that row"
            )
        label = row[label_col] if with_labels and label_col is not None else None
        yield row_number, row[text_col], label


def _first_undecodable(path, codec):
    """(byte offset, row) of the first byte of `path` that `codec` cannot decode, read in blocks."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset, row = 0, 1
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            # The decoder holds back the bytes of a character cut by the last block's end;
            # an error's position counts from the first of them.
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block)
            except UnicodeDecodeError as e:
                bad = offset - pending + e.start
                f.seek(0)
                head = f.read(max(bad, 0))
                return bad, head.count(b"\n") + 1
            offset += len(block)
            row += block.count(b"\n")
    return offset, row
