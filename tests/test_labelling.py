"""Labelling a corpus into TFRecord shards (`apps.label`, `kdistill.labelling`) and streaming them back."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from kdistill import data, io, labelling, pipeline, teacher as teacher_lib, tokenizer as tokenizer_lib, training
from kdistill.config import DistillConfig, StudentConfig
from kdistill.errors import KdistillError
from tests.conftest import SST2, accuracy
from tests.binaries import one_line_error, run_app, run_in_process

CORPUS_ROWS = 400


def _write_tsv(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("label\tsentence\n")
        for label, text in rows:
            f.write(f"{label}\t{text}\n")
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The first 400 rows of SST-2 train, as a TSV with a header (labels present, to be dropped)."""
    rows = [(label, text) for _, text, label in data.iter_rows(os.path.join(SST2, "train.tsv"), with_labels=True)]
    return _write_tsv(tmp_path_factory.mktemp("corpus") / "corpus.tsv", rows[:CORPUS_ROWS])


@pytest.fixture(scope="module")
def labelled_once(corpus, teacher_dir, tmp_path_factory):
    """The corpus labelled by one process into 4 shards."""
    out = str(tmp_path_factory.mktemp("one_process"))
    run_app("apps.label", f"--teacher_dir={teacher_dir}", f"--input={corpus}", f"--out={out}", "--num_shards=4",
            "--teacher_runtime=tensorflow")
    return out


def test_split_runs_give_exactly_the_single_run_logits(corpus, teacher_dir, labelled_once, tmp_path, teacher):
    """Independent runs of the binary, two shards of four each (as separate machines would), in this process."""
    out = str(tmp_path / "split_runs")
    for indices in ("0,2", "1,3"):
        run_in_process("apps.label", f"--teacher_dir={teacher_dir}", f"--input={corpus}", f"--out={out}",
                       "--num_shards=4", f"--shard_index={indices}", "--teacher_runtime=tensorflow")
    texts_1, logits_1, labels_1 = labelling.read_all(labelling.open_shards(labelled_once))
    texts_4, logits_4, labels_4 = labelling.read_all(labelling.open_shards(out))
    assert len(texts_1) == CORPUS_ROWS
    assert list(texts_4) == list(texts_1)
    assert np.array_equal(logits_4, logits_1)  # bit for bit
    assert (labels_1 == -1).all() and (labels_4 == -1).all()  # the corpus' labels are not kept by default
    for index in range(4):
        name = labelling.shard_stem(index, 4) + ".tfrecord"
        with open(os.path.join(out, name), "rb") as a, open(os.path.join(labelled_once, name), "rb") as b:
            assert a.read() == b.read(), name
    # Row i went to shard i % 4, and the logits are the teacher's.
    corpus_texts = [text for _, text, _ in data.iter_rows(corpus)]
    expected = [t for k in range(4) for t in corpus_texts[k::4]]
    assert list(texts_1) == expected
    reference = teacher_lib.logits(teacher, expected, verbose=False)
    np.testing.assert_allclose(logits_1, reference, atol=1e-4)
    # The runtime is part of a shard's identity: in another runtime every shard is labelled again, once. (A stand-in
    # predict keeps the int8 model's conversion out of the fast suite; tests/test_teacher.py checks that model.)
    logits_of = dict(zip(expected, reference))

    def stand_in(batch):
        return np.stack([logits_of[text] for text in batch])

    for labelled in ([0, 1, 2, 3], []):
        again = labelling.label_corpus(teacher, [corpus], out, num_shards=4, verbose=False, predict=stand_in,
                                       runtime=teacher_lib.LITERT_INT8)
        assert again["labelled_shards"] == labelled


def _by_length(texts):
    """Stand-in logits (the teacher's are checked above): which rows are labelled again is what is tested here."""
    return np.array([[len(t), -len(t)] for t in texts], np.float32)


def test_rerun_skips_finished_shards_and_relabels_what_changed(corpus, teacher, tmp_path):
    out = str(tmp_path / "shards")

    def label(path):
        return labelling.label_corpus(teacher, [path], out, num_shards=4, verbose=False, predict=_by_length)

    first = label(corpus)
    assert first["labelled_shards"] == [0, 1, 2, 3] and first["rows"] == CORPUS_ROWS
    stamps = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(out, "shard-*"))}
    again = label(corpus)
    assert again["labelled_shards"] == [] and again["skipped_shards"] == [0, 1, 2, 3]
    assert {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(out, "shard-*"))} == stamps
    # A shard without its sidecar is unfinished: only it is labelled again.
    os.remove(os.path.join(out, labelling.shard_stem(2, 4) + ".json"))
    assert label(corpus)["labelled_shards"] == [2]
    # A changed corpus is noticed: every shard is labelled again.
    changed = tmp_path / "changed.tsv"
    with open(corpus) as f:
        changed.write_text(f.read() + "1\ta late addition\n")
    moved = label(str(changed))
    assert moved["labelled_shards"] == [0, 1, 2, 3] and moved["rows"] == CORPUS_ROWS + 1
    assert labelling.open_shards(out).total_rows == CORPUS_ROWS + 1


def test_auto_labels_through_int8_only_where_it_gives_the_float32_labels_on_the_first_texts(
        corpus, teacher, labeller_teacher_dir, tmp_path, monkeypatch):
    """`--teacher_runtime=auto` (apps.label's default) checks the int8 teacher on the corpus' first texts, as a
    run's dev does in `pipeline.label`, and keeps it only where it agrees often enough."""
    with open(corpus) as f:
        small = tmp_path / "small.tsv"
        small.write_text("".join(line for _, line in zip(range(101), f)))  # the header and 100 rows
    monkeypatch.setattr(labelling, "AGREEMENT_TEXTS", 60)

    def label(name, least):
        monkeypatch.setattr(teacher_lib, "MIN_LABELLER_AGREEMENT", least)
        out = tmp_path / name
        summary = labelling.label_corpus(teacher, [str(small)], str(out), num_shards=2, verbose=False,
                                         runtime="auto", cache_dir=labeller_teacher_dir)
        assert io.read_json(str(out / (labelling.shard_stem(0, 2) + ".json")))["runtime"] == summary["labelling"]["runtime"]
        return summary["labelling"]

    kept = label("kept", 0.0)
    assert kept["runtime"] == teacher_lib.LITERT_INT8 and 0.9 <= kept["sample_agreement_with_teacher"] <= 1.0
    set_aside = label("set_aside", 1.01)  # no labeller can agree that often
    assert set_aside["runtime"] == teacher_lib.TENSORFLOW and set_aside["set_aside"] == teacher_lib.LITERT_INT8
    assert set_aside["sample_agreement_with_teacher"] == kept["sample_agreement_with_teacher"]


def test_bad_row_is_a_one_line_error_and_leaves_no_shard(corpus, teacher_dir, tmp_path):
    with open(corpus) as f:
        lines = f.read().splitlines()
    bad = tmp_path / "bad.tsv"
    bad.write_text("\n".join(lines[:300] + ["a row without its label column"] + lines[300:]) + "\n")
    out = tmp_path / "shards"
    result = run_in_process("apps.label", f"--teacher_dir={teacher_dir}", f"--input={bad}", f"--out={out}",
                            "--num_shards=4", check=False)
    assert f"{bad}:301: expected 2 columns, found 1" in one_line_error(result)
    assert not os.path.exists(out) or os.listdir(out) == []


def test_failure_while_labelling_leaves_no_partial_shard(corpus, teacher, tmp_path):
    calls = []

    def failing_predict(texts):
        calls.append(len(texts))
        if len(calls) == 3:
            raise RuntimeError("the machine went away")
        return np.zeros((len(texts), 2), np.float32)

    out = str(tmp_path / "shards")
    with pytest.raises(RuntimeError):
        labelling.label_corpus(teacher, [corpus], out, num_shards=2, chunk_rows=50, predict=failing_predict,
                               verbose=False)
    assert os.listdir(out) == []  # neither shards nor temporaries
    with pytest.raises(KdistillError, match="no shard-"):
        labelling.open_shards(out)


def test_incomplete_shard_sets_and_other_teachers_are_refused(labelled_once, teacher, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for index in (0, 1, 3):
        for ext in (".tfrecord", ".json"):
            name = labelling.shard_stem(index, 4) + ext
            os.link(os.path.join(labelled_once, name), partial / name)
    with pytest.raises(KdistillError, match="shards 2 of 4 are missing"):
        labelling.open_shards(str(partial))
    shards = labelling.open_shards(labelled_once)
    labelling.check_teacher(shards, teacher, "here")
    shards.teacher = "another"
    with pytest.raises(KdistillError, match="labelled by another teacher"):
        labelling.check_teacher(shards, teacher, "here")


def _fake_shards(teacher, texts, folder, num_shards=3):
    """Shards of `texts` whose logits encode the row (fast: no teacher run)."""
    path = os.path.join(folder, "texts.txt")
    with open(path, "w") as f:
        f.write("\n".join(texts) + "\n")
    rows = {text: i for i, text in enumerate(texts)}
    labelling.label_corpus(
        teacher, [path], folder, num_shards=num_shards, verbose=False,
        predict=lambda batch: np.array([[rows[t], -rows[t]] for t in batch], np.float32),
    )
    return labelling.open_shards(folder)


def _one_epoch(dataset):
    texts, logits, labels = [], [], []
    for x, y in dataset:
        texts += [t.decode() for t in x["text"].numpy()]
        logits.append(x["teacher_logits"].numpy())
        labels.append(y.numpy())
    return texts, np.concatenate(logits), np.concatenate(labels)


def test_stream_reads_every_row_once_per_epoch_in_a_seeded_order(teacher, sst2_splits, tmp_path):
    texts = list(dict.fromkeys(sst2_splits.unlabelled_texts[:500]))
    shards = _fake_shards(teacher, texts, str(tmp_path))
    keep = [i for i, t in enumerate(sst2_splits.labelled_texts) if t not in set(texts)][:20]
    labelled = ([str(t) for t in sst2_splits.labelled_texts[keep]], np.full((20, 2), 7.0, np.float32),
                sst2_splits.labelled_labels[keep])
    seed = [11]

    def stream(**kwargs):
        return labelling.dataset(shards, 32, lambda: seed[0], labelled=labelled, shuffle_buffer=64, **kwargs)

    epoch_texts, logits, labels = _one_epoch(stream())
    assert sorted(epoch_texts) == sorted(texts + list(labelled[0]))
    rows = {text: i for i, text in enumerate(texts)}
    for text, row, label in zip(epoch_texts, logits, labels):
        expected = [7.0, 7.0] if text in labelled[0] else [rows[text], -rows[text]]
        np.testing.assert_array_equal(row, expected)
        assert (label >= 0) == (text in labelled[0])
    # The labelled rows are spread over the epoch, not bunched at one end.
    positions = [i for i, text in enumerate(epoch_texts) if text in labelled[0]]
    assert positions[0] < len(epoch_texts) / 4 and positions[-1] > 3 * len(epoch_texts) / 4
    assert _one_epoch(stream())[0] == epoch_texts  # same seed, same order
    seed[0] = 12
    assert _one_epoch(stream())[0] != epoch_texts
    # Two input pipelines (workers) read disjoint halves that together are the whole.
    halves = []
    for pipeline_id in (0, 1):
        context = tf.distribute.InputContext(2, pipeline_id, 2)
        halves.append(_one_epoch(stream(input_context=context))[0])
    assert not set(halves[0]) & set(halves[1])
    assert sorted(halves[0] + halves[1]) == sorted(texts + list(labelled[0]))
    # With the student's tokenizer each batch is cut to its longest text, but for a TPU's fixed shapes.
    tokenizer = tokenizer_lib.StudentTokenizer(teacher.preprocessor.tokenizer.get_vocabulary(), sequence_length=64)
    assert all(0 < x["token_ids"].shape[1] < 64 for x, _ in stream(tokenizer=tokenizer).take(4))
    assert all(x["token_ids"].shape[1] == 64 for x, _ in stream(tokenizer=tokenizer, drop_remainder=True).take(4))


def test_length_buckets_give_every_row_once_in_batches_of_similar_length(teacher, sst2_splits, tmp_path):
    """`length_buckets`, streamed (runs of 4 batches sorted by bytes) and in memory (runs of `BUCKET_BATCHES`
    sorted by pieces): the same rows each epoch, in batches whose longest text is shorter, in a seeded order."""
    texts = list(dict.fromkeys(sst2_splits.unlabelled_texts[:700]))
    shards = _fake_shards(teacher, texts, str(tmp_path))

    def stream(bucket_batches, seed=11):
        return labelling.dataset(shards, 32, lambda: seed, shuffle_buffer=128, bucket_batches=bucket_batches)

    def spread(batches):  # the mean over batches of the longest text's bytes minus the shortest's
        return np.mean([max(map(len, b)) - min(map(len, b)) for b in batches])

    plain = [[t.decode() for t in x["text"].numpy()] for x, _ in stream(0)]
    bucketed = [[t.decode() for t in x["text"].numpy()] for x, _ in stream(4)]
    assert sorted(sum(bucketed, [])) == sorted(texts) and len(bucketed) == len(plain)
    assert [len(b) for b in bucketed] == [len(b) for b in plain]  # only the last batch is partial
    assert spread(bucketed) < spread(plain) / 3
    assert [[t.decode() for t in x["text"].numpy()] for x, _ in stream(4)] == bucketed
    assert [[t.decode() for t in x["text"].numpy()] for x, _ in stream(4, seed=12)] != bucketed

    ids = np.zeros((len(texts), 64), np.int32)
    widths = np.random.default_rng(0).integers(1, 65, len(texts))
    for row, width in enumerate(widths):
        ids[row, :width] = row + 1  # the row, recoverable from its ids
    logits, labels = np.zeros((len(texts), 2), np.float32), np.full(len(texts), -1, np.int32)

    def epoch(length_buckets):
        dataset = training.transfer_dataset(ids, logits, labels, 32, io.EpochOrder(3), length_buckets)
        return [x["token_ids"].numpy() for x, _ in dataset]

    plain, bucketed = epoch(False), epoch(True)
    assert sorted(int(b[i, 0]) for b in bucketed for i in range(len(b))) == list(range(1, len(texts) + 1))
    assert sum(b.shape[1] for b in bucketed) < 0.6 * sum(b.shape[1] for b in plain)
    widths = [b.shape[1] for b in bucketed]
    assert widths != sorted(widths)  # sorted within the run, then the run's batches shuffled


def test_streamed_vocabulary_count_equals_the_in_memory_pruning(teacher, sst2_splits, tmp_path):
    texts = list(sst2_splits.unlabelled_texts[:600])
    shards = _fake_shards(teacher, texts, str(tmp_path), num_shards=2)
    vocabulary = teacher.preprocessor.tokenizer.get_vocabulary()
    counter = tokenizer_lib.PieceCounter(vocabulary).add_all(labelling.text_batches(shards, batch_size=128))
    assert counter.texts == 600
    assert tokenizer_lib.kept_ids_from_counts(vocabulary, counter.counts, 1500) == tokenizer_lib.prune_vocabulary(
        vocabulary, texts, 1500
    )


def test_distilling_from_shards_matches_the_in_memory_recipe(teacher, teacher_dir, sst2_splits, transfer_logits,
                                                             tmp_path):
    """The same transfer set, streamed from shards or held in memory, trains students of the same quality."""
    texts = list(sst2_splits.unlabelled_texts[:1500])
    path = tmp_path / "unlabelled.txt"
    path.write_text("\n".join(texts) + "\n")
    labelling.label_corpus(
        teacher, [str(path)], str(tmp_path / "shards"), num_shards=3, verbose=False,
        predict=lambda batch: transfer_logits["unlabelled"][[texts.index(t) for t in batch]],
    )
    shards = labelling.open_shards(str(tmp_path / "shards"))
    student_config = StudentConfig(vocabulary_size=2000, embedding_dim=32, filters=32, kernel_sizes=(2, 3, 4))
    config = DistillConfig(epochs=4, batch_size=64)
    logits = {"labelled": transfer_logits["labelled"], "dev": transfer_logits["dev"]}
    streamed, metrics = pipeline.distill_student_from_shards(
        teacher, logits, sst2_splits, shards, str(tmp_path / "streamed"), student_config, config,
    )
    assert metrics["num_unlabelled"] == 1500
    splits = sst2_splits.__class__(**{**sst2_splits.__dict__, "unlabelled_texts": np.array(texts, dtype=object)})
    in_memory = training.build_student(teacher, splits, student_config)
    training.distill(teacher, in_memory, splits, transfer_logits["unlabelled"][:1500], transfer_logits["labelled"],
                     config, verbose=0)
    assert streamed.tokenizer.kept_ids == in_memory.tokenizer.kept_ids  # the same vocabulary, counted streaming
    acc_streamed = accuracy(streamed.predict_texts(sst2_splits.dev_texts), sst2_splits.dev_labels)
    acc_memory = accuracy(in_memory.predict_texts(sst2_splits.dev_texts), sst2_splits.dev_labels)
    print(f"dev accuracy: streamed {acc_streamed:.3f}, in memory {acc_memory:.3f}")
    assert acc_streamed > 0.6 and abs(acc_streamed - acc_memory) < 0.05


def test_many_shards_are_written_a_group_at_a_time_with_the_same_bytes(corpus, teacher, tmp_path, monkeypatch):
    """A process writing many shards buffers a bounded number of texts: it re-reads the corpus per group."""
    labelling.label_corpus(teacher, [corpus], str(tmp_path / "at_once"), num_shards=5, chunk_rows=30,
                           predict=_by_length, verbose=False)
    monkeypatch.setattr(labelling, "MAX_BUFFERED_ROWS", 60)  # two shards' chunks: three passes
    reads = []
    real_rows = labelling._rows
    monkeypatch.setattr(labelling, "_rows", lambda *a: reads.append(1) or real_rows(*a))
    labelling.label_corpus(teacher, [corpus], str(tmp_path / "grouped"), num_shards=5, chunk_rows=30,
                           predict=_by_length, verbose=False)
    assert len(reads) == 1 + 3  # the check pass, then one pass per group of two shards
    for index in range(5):
        name = labelling.shard_stem(index, 5) + ".tfrecord"
        assert (tmp_path / "at_once" / name).read_bytes() == (tmp_path / "grouped" / name).read_bytes()
