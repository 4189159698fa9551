import json
import os

import numpy as np
import pytest

from kdistill import data
from kdistill.errors import KdistillError
from tests.conftest import AG_NEWS, SHARED_DATA, SST2


def test_sst2_label_scarce_split_is_stratified_and_disjoint():
    splits = data.load(SST2, num_labels=1000, seed=0)
    assert len(splits.labelled_texts) == 1000
    assert len(splits.dev_texts) == 872
    assert len(splits.labelled_texts) + len(splits.unlabelled_texts) == 67349
    # SST-2 train is 44% negative: the sample keeps that share to within a row.
    assert abs(np.mean(splits.labelled_labels == 0) - 29780 / 67349) < 0.002
    train_texts = set(splits.labelled_texts) | set(splits.unlabelled_texts)
    assert train_texts.isdisjoint(splits.dev_texts)
    assert splits.class_names == ["0", "1"]


def test_labelled_rows_leave_the_unlabelled_pool():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    labelled, unlabelled = data.stratified_split(labels, 10, seed=3)
    assert len(np.intersect1d(labelled, unlabelled)) == 0
    assert len(labelled) + len(unlabelled) == 100
    assert np.bincount(labels[labelled]).tolist() == [5, 3, 2]


def test_every_class_gets_a_label_even_when_rare():
    labels = np.array([0] * 97 + [1, 2, 3])
    labelled, _ = data.stratified_split(labels, 5, seed=0)
    assert sorted(set(labels[labelled])) == [0, 1, 2, 3]
    assert len(labelled) == 5


def test_split_is_seeded():
    a = data.load(AG_NEWS, num_labels=100, seed=7)
    b = data.load(AG_NEWS, num_labels=100, seed=7)
    c = data.load(AG_NEWS, num_labels=100, seed=8)
    assert list(a.labelled_texts) == list(b.labelled_texts)
    assert list(a.labelled_texts) != list(c.labelled_texts)


def test_ag_news_headerless_csv_with_class_file():
    splits = data.load(AG_NEWS, num_labels=100, seed=0, max_unlabelled=500)
    assert splits.class_names == ["world", "sports", "business", "tech"]
    assert np.bincount(splits.labelled_labels).tolist() == [26, 25, 25, 24]
    assert len(splits.unlabelled_texts) == 500
    assert len(splits.dev_texts) == 1000
    # The text column is the long one, not the label.
    assert min(len(t) for t in splits.labelled_texts) > 20


def _real_rows(n=60):
    with open(os.path.join(SST2, "train.tsv"), encoding="utf-8") as f:
        next(f)
        rows = [line.rstrip("\n").split("\t") for _, line in zip(range(n), f)]
    return [(int(label), text) for label, text in rows]


@pytest.mark.parametrize("fmt", ["tsv_header", "tsv_plain", "csv_header", "csv_plain", "jsonl"])
def test_local_formats_read_the_same_rows(tmp_path, fmt):
    rows = _real_rows()
    folder = tmp_path / fmt
    folder.mkdir()
    for split, part in (("train", rows[:40]), ("dev", rows[40:])):
        if fmt == "jsonl":
            lines = [json.dumps({"text": t, "label": y}) for y, t in part]
            (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
            continue
        sep = "\t" if fmt.startswith("tsv") else ","
        header = [f"sentence{sep}label"] if fmt.endswith("header") else []
        quote = (lambda s: s) if sep == "\t" else (lambda s: '"' + s.replace('"', '""') + '"')
        lines = header + [f"{quote(t)}{sep}{y}" for y, t in part]
        (folder / f"{split}.{fmt[:3]}").write_text("\n".join(lines) + "\n")
    splits = data.load(str(folder), num_labels=10, seed=0)
    assert len(splits.labelled_texts) + len(splits.unlabelled_texts) == 40
    assert sorted(splits.dev_texts) == sorted(t for _, t in rows[40:])
    expected = {t: y for y, t in rows}
    assert all(expected[t] == y for t, y in zip(splits.labelled_texts, splits.labelled_labels))


def test_single_file_holds_out_a_dev_split(tmp_path):
    rows = _real_rows(100)
    path = tmp_path / "reviews.tsv"
    path.write_text("label\tsentence\n" + "".join(f"{y}\t{t}\n" for y, t in rows))
    splits = data.load(str(path), num_labels=20, seed=0)
    assert len(splits.dev_texts) == 20
    assert len(splits.labelled_texts) + len(splits.unlabelled_texts) == 80
    # Stratified: each class keeps its share of the file in dev.
    share = np.mean([int(y) for y, _ in rows])
    assert abs(np.mean(splits.dev_labels) - share) <= 1 / 20
    assert "held out of reviews.tsv: 20%, stratified" in splits.describe()


def test_extra_unlabelled_text_file(tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("an unseen review\n\nanother one\n")
    splits = data.load(AG_NEWS, num_labels=100, seed=0, unlabelled=str(extra))
    assert len(splits.unlabelled_texts) == 3902
    assert "another one" in set(splits.unlabelled_texts)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_labels": 3}, "fewer than the 4 classes"),
    ],
)
def test_impossible_label_counts_are_user_errors(kwargs, message):
    with pytest.raises(KdistillError, match=message):
        data.load(AG_NEWS, seed=0, **kwargs)


def test_unknown_label_names_file_and_row(tmp_path):
    (tmp_path / "classes.txt").write_text("neg\npos\n")
    (tmp_path / "train.tsv").write_text("label\ttext\nneg\tbad\npos\tgood\nmaybe\tok\n")
    (tmp_path / "dev.tsv").write_text("label\ttext\nneg\tawful\n")
    with pytest.raises(KdistillError, match=r"train.tsv:4: label 'maybe' is not one of the classes"):
        data.load(str(tmp_path), num_labels=2)


def test_missing_path_is_a_user_error():
    with pytest.raises(KdistillError, match="no such file or folder"):
        data.load("/nonexistent/data", num_labels=10)


@pytest.mark.parametrize("task, rows, classes", [("clinc150", 15_000, 150), ("subj", 9_000, 2)])
def test_tsv_texts_that_start_with_a_quote_mark_stay_one_row_each(task, rows, classes):
    """A TSV has no quoting: CLINC150's `'what does "dinero" mean'` must not swallow the rows after it."""
    train = data.read_labelled_file(os.path.join(SHARED_DATA, task, "train.tsv"))
    assert len(train.texts) == rows and len(set(train.labels)) == classes
    assert data.load(os.path.join(SHARED_DATA, task), num_labels=1000, seed=0).num_classes == classes


def test_a_row_without_a_label_or_with_a_number_for_text_is_named(tmp_path):
    """An empty label cell would become a class named ''; a number in a JSONL text field would be trained on."""
    tsv = tmp_path / "train.tsv"
    tsv.write_text("label\tsentence\npos\ta fine film\n\tno label here\nneg\ta dull film\n")
    with pytest.raises(KdistillError, match=r"train.tsv:3: the row has no label; label it, or put unlabelled texts"):
        data.read_labelled_file(str(tsv))
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text('{"text": "a fine film", "label": "pos"}\n{"text": 12345, "label": "neg"}\n')
    with pytest.raises(KdistillError, match=r"train.jsonl:2: 'text' holds int 12345, not text; write it as a JSON"):
        data.read_labelled_file(str(jsonl))
    jsonl.write_text('{"text": "a fine film", "label": "pos"}\n{"text": "dull"}\n')
    with pytest.raises(KdistillError, match=r"train.jsonl:2: the row has no label"):
        data.read_labelled_file(str(jsonl))


def test_num_labels_all_labels_every_row_and_the_flag_takes_all(tmp_path):
    """A user's small file: every row labelled, by asking for all or for more than there are."""
    from absl import flags

    from kdistill.apps import common

    assert common.LabelCount().parse("all") is None and common.LabelCount().parse("800") == 800
    with pytest.raises(ValueError, match="neither a number of rows nor 'all'"):
        common.LabelCount().parse("many")
    every = data.load(AG_NEWS, num_labels=None, unlabelled=os.path.join(SST2, "dev.tsv"))
    assert len(every.labelled_texts) == 4000 and len(every.unlabelled_texts) == 872 and every.labels_asked is None
    parser = flags.FlagValues()
    flags.DEFINE(common.LabelCount(), "num_labels", 1000, "rows", flag_values=parser)
    parser(["prog", "--num_labels=all"])
    assert parser.num_labels is None
