"""Labelled text-classification data and the label-scarce split.

`load(spec, num_labels=...)` reads a dataset and returns `Splits`: a small,
seeded, stratified labelled sample of `train`, the rest of `train` as
unlabelled text (its labels dropped), and the `dev` split for evaluation.

A spec is either a TensorFlow Datasets name prefixed with `tfds:` (for example
`tfds:glue/sst2`, `tfds:ag_news_subset`) or a local path:

- a folder holding `train.*` and `dev.*` (or `validation.*` / `test.*`) files,
  and optionally `classes.txt` (one class name per line, in label order);
- a single labelled file, from which a seeded 10% is held out as dev.

Files may be TSV or CSV, with or without a header row, or JSONL; the text and
label columns are recognised by name or, without a header, by their content.
A `.txt` file (one text per line) is unlabelled text, accepted as `unlabelled`.

Example:

```python
splits = load("../shared/data/sst2", num_labels=100, seed=0, max_unlabelled=1000)
print(len(splits.labelled_texts), len(splits.unlabelled_texts), splits.class_names)
```
"""

import csv
import dataclasses
import json
import os

import numpy as np

from kdistill.errors import KdistillError

TEXT_COLUMNS = ("sentence", "text", "content", "review", "document", "description", "title")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "y")
DEV_NAMES = ("dev", "validation", "valid", "test")
LABELLED_EXTENSIONS = (".tsv", ".csv", ".jsonl")
HELD_OUT_DEV_FRACTION = 0.1


@dataclasses.dataclass
class Splits:
    labelled_texts: np.ndarray
    labelled_labels: np.ndarray
    unlabelled_texts: np.ndarray
    dev_texts: np.ndarray
    dev_labels: np.ndarray
    class_names: list

    @property
    def num_classes(self):
        return len(self.class_names)

    def describe(self):
        return (
            f"{len(self.labelled_texts)} labelled, {len(self.unlabelled_texts)} unlabelled, "
            f"{len(self.dev_texts)} dev texts; classes {self.class_names}"
        )


@dataclasses.dataclass
class LabelledData:
    texts: list
    labels: list  # raw label values as read: ints or strings


def load(spec, num_labels, seed=0, max_unlabelled=None, unlabelled=None):
    """Reads `spec` and makes the label-scarce split.

    Args:
        spec: `tfds:<name>` or a local folder or file.
        num_labels: how many rows of train keep their label (stratified by class).
        seed: seeds the labelled sample and the unlabelled cap.
        max_unlabelled: keep at most this many unlabelled texts (a seeded sample).
        unlabelled: optional extra unlabelled text: a `.txt` file or any labelled file.
    """
    train, dev, class_names = _read_spec(spec, seed)
    train_labels = _encode_labels(train, class_names, spec)
    dev_labels = _encode_labels(dev, class_names, spec)
    labelled_idx, unlabelled_idx = stratified_split(train_labels, num_labels, seed, spec)
    train_texts = np.array(train.texts, dtype=object)
    unlabelled_texts = train_texts[unlabelled_idx]
    if unlabelled:
        unlabelled_texts = np.concatenate([unlabelled_texts, read_texts(unlabelled)])
    if max_unlabelled is not None and len(unlabelled_texts) > max_unlabelled:
        keep = np.random.default_rng(seed + 1).choice(
            len(unlabelled_texts), max_unlabelled, replace=False
        )
        unlabelled_texts = unlabelled_texts[np.sort(keep)]
    return Splits(
        labelled_texts=train_texts[labelled_idx],
        labelled_labels=train_labels[labelled_idx],
        unlabelled_texts=unlabelled_texts,
        dev_texts=np.array(dev.texts, dtype=object),
        dev_labels=dev_labels,
        class_names=class_names,
    )


def stratified_split(labels, num_labels, seed, source="data"):
    """Indices of a seeded labelled sample of `num_labels` rows, class shares kept, and the rest.

    Every class gets at least one labelled row; the remaining quota goes to the
    classes in proportion to their size (largest remainders first).
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if num_labels > len(labels):
        raise KdistillError(
            f"{source}: --num_labels={num_labels} but train has only {len(labels)} rows; "
            "ask for fewer labels"
        )
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


def read_texts(path):
    """Texts of a file: one per line for `.txt`, the text column for labelled formats."""
    if path.endswith(".txt"):
        with _open(path) as f:
            texts = [line.rstrip("\n") for line in f]
        return np.array([t for t in texts if t.strip()], dtype=object)
    return np.array(read_labelled_file(path, require_labels=False).texts, dtype=object)


def read_labelled_file(path, require_labels=True):
    """Reads a TSV, CSV or JSONL file into texts and raw label values."""
    if not os.path.isfile(path):
        raise KdistillError(f"{path}: no such file; check the --dataset path")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".jsonl":
        data = _read_jsonl(path)
    elif ext in (".tsv", ".csv"):
        data = _read_table(path, "\t" if ext == ".tsv" else ",")
    else:
        raise KdistillError(
            f"{path}: unsupported file type {ext!r}; use .tsv, .csv or .jsonl (.txt for unlabelled text)"
        )
    if not data.texts:
        raise KdistillError(f"{path}: no rows with text; give a file with at least one row")
    if require_labels and data.labels is None:
        raise KdistillError(f"{path}: no label column found; add a 'label' column")
    return data


def _open(path):
    try:
        return open(path, encoding="utf-8", newline="")
    except OSError as e:
        raise KdistillError(f"{path}: cannot open ({e.strerror}); check the path") from None


def _read_jsonl(path):
    texts, labels = [], []
    with _open(path) as f:
        for row, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise KdistillError(f"{path}:{row}: not valid JSON ({e.msg}); fix or drop the row") from None
            text_key = next((k for k in TEXT_COLUMNS if k in record), None)
            if text_key is None:
                raise KdistillError(
                    f"{path}:{row}: no text field; name it one of {', '.join(TEXT_COLUMNS)}"
                )
            texts.append(str(record[text_key]))
            label_key = next((k for k in LABEL_COLUMNS if k in record), None)
            labels.append(record[label_key] if label_key else None)
    has_labels = any(label is not None for label in labels)
    return LabelledData(texts, labels if has_labels else None)


def _read_table(path, delimiter):
    with _open(path) as f:
        rows = [row for row in csv.reader(f, delimiter=delimiter) if row]
    if not rows:
        return LabelledData([], None)
    width = max(len(row) for row in rows)
    if width == 1:
        return LabelledData([row[0] for row in rows], None)
    has_header = _is_header(rows[0])
    header = [c.strip().lower() for c in rows[0]] if has_header else None
    body = rows[1:] if has_header else rows
    text_col, label_col = _pick_columns(header, body, width)
    texts, labels = [], []
    for row_number, row in enumerate(body, start=2 if has_header else 1):
        if len(row) <= max(text_col, label_col):
            raise KdistillError(
                f"{path}:{row_number}: expected {width} columns, found {len(row)}; "
                "check the delimiter and quoting of that row"
            )
        texts.append(row[text_col])
        labels.append(row[label_col])
    return LabelledData(texts, labels)


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


def _encode_labels(data, class_names, source):
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
                f"{source}: row {row + 1} has label {key!r}, not one of the classes "
                f"{class_names}; fix the row or the class list"
            )
    return encoded


def _class_names(train, classes_file=None):
    if classes_file and os.path.isfile(classes_file):
        with _open(classes_file) as f:
            return [line.strip() for line in f if line.strip()]
    values = sorted({str(v).strip() for v in train.labels})
    if all(v.lstrip("-").isdigit() for v in values):
        return [str(i) for i in range(max(int(v) for v in values) + 1)]
    return values


def _read_spec(spec, seed):
    if spec.startswith("tfds:"):
        return _read_tfds(spec[len("tfds:") :])
    if os.path.isdir(spec):
        return _read_folder(spec)
    if os.path.isfile(spec):
        return _read_single_file(spec, seed)
    raise KdistillError(
        f"{spec}: no such file or folder; give a local path or a tfds name like tfds:glue/sst2"
    )


def _find_file(folder, stems):
    for stem in stems:
        for ext in LABELLED_EXTENSIONS:
            path = os.path.join(folder, stem + ext)
            if os.path.isfile(path):
                return path
    return None


def _read_folder(folder):
    train_path = _find_file(folder, ("train",))
    dev_path = _find_file(folder, DEV_NAMES)
    if train_path is None or dev_path is None:
        raise KdistillError(
            f"{folder}: needs a train file and a dev file (train.tsv|csv|jsonl and "
            "dev/validation/test.tsv|csv|jsonl); add the missing one"
        )
    train = read_labelled_file(train_path)
    dev = read_labelled_file(dev_path)
    return train, dev, _class_names(train, os.path.join(folder, "classes.txt"))


def _read_single_file(path, seed):
    data = read_labelled_file(path)
    order = np.random.default_rng(seed + 2).permutation(len(data.texts))
    num_dev = max(1, int(len(order) * HELD_OUT_DEV_FRACTION))
    pick = lambda idx: LabelledData([data.texts[i] for i in idx], [data.labels[i] for i in idx])
    return pick(order[num_dev:]), pick(order[:num_dev]), _class_names(data)


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
        return LabelledData(texts, labels)

    train, dev = read("train"), read(dev_split)
    # GLUE's test split has label -1 everywhere; its validation split is the dev set.
    return train, dev, list(label_feature.names)
