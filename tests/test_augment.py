"""Transfer-set augmentation on real AG News and SST-2 text, and its place in the pipeline."""

import dataclasses

import numpy as np
import pytest

from kdistill import augment, data, pipeline, teacher as teacher_lib, training
from kdistill.config import DistillConfig, StudentConfig

from conftest import AG_NEWS, MPQA, SST2


@pytest.fixture(scope="module")
def ag_texts():
    splits = data.load(AG_NEWS, num_labels=100, seed=0, max_unlabelled=200)
    return [str(t) for t in np.concatenate([splits.labelled_texts, splits.unlabelled_texts])]


def test_copies_are_new_distinct_and_seeded(ag_texts):
    extra = augment.augment_texts(ag_texts, copies=3, seed=0)
    assert 2 * len(ag_texts) < len(extra) <= 3 * len(ag_texts)
    assert len(set(extra)) == len(extra)
    assert not set(extra) & set(ag_texts)
    assert extra == augment.augment_texts(ag_texts, copies=3, seed=0)
    assert extra != augment.augment_texts(ag_texts, copies=3, seed=1)


def test_copies_only_use_the_corpus_words(ag_texts):
    corpus = {word for text in ag_texts for word in text.split()}
    for text in augment.augment_texts(ag_texts, copies=2, seed=0):
        assert set(text.split()) <= corpus


def test_auto_size_grows_short_texts_only(ag_texts):
    """SST-2's phrases (median 7 words) are grown: a small pool to 60,000 texts, its whole 67k pool doubled up to
    134,000; AG News' items (median 37) and a pool already over 134,000 are not."""
    sst2 = [str(t) for t in data.load(SST2, num_labels=100, seed=0, max_unlabelled=3000).unlabelled_texts]
    assert augment.median_words(sst2) < augment.SHORT_TEXT_WORDS < augment.median_words(ag_texts)

    def auto(texts):
        return augment.auto_size(len(texts), augment.median_words(texts))

    assert auto(sst2) == augment.AUTO_MIN_TEXTS == 60_000
    assert auto(sst2 * 20) == 120_000  # 60,000 texts doubled
    assert auto(sst2 * 25) == augment.AUTO_MAX_TEXTS == 134_000  # 75,000 doubled, capped
    assert auto(sst2 * 50) == 134_000 < len(sst2 * 50)  # more texts than that: no copies
    assert auto(ag_texts) == 0 and auto([]) == 0
    assert DistillConfig().augment_to == "auto" and DistillConfig(augment_to="60000").augment_to == 60_000
    with pytest.raises(ValueError, match="neither 'auto' nor a number"):
        DistillConfig(augment_to="lots")


def test_deletion_shortens_and_ngrams_are_windows_of_the_text(ag_texts):
    dropped = augment.augment_texts(ag_texts, copies=1, seed=0, drop_prob=0.5, swap_prob=0, ngram_prob=0)
    assert np.mean([len(t.split()) for t in dropped]) < 0.7 * np.mean([len(t.split()) for t in ag_texts])
    windows = augment.augment_texts(ag_texts[:50], copies=1, seed=0, drop_prob=0, swap_prob=0, ngram_prob=1)
    originals = [" " + " ".join(t.split()) + " " for t in ag_texts[:50]]
    assert windows and all(any(" " + w + " " in o for o in originals) for w in windows)


def test_no_copies_asked_or_possible():
    assert augment.augment_texts(["a fine film"], copies=0) == []
    assert augment.augment_texts(["a fine film"], copies=5, drop_prob=1.0) == []  # every word deleted
    assert augment.augment_texts([], copies=5) == []


def test_pipeline_grows_the_transfer_set_with_teacher_logits(teacher, teacher_dir, sst2_splits, transfer_logits):
    splits = dataclasses.replace(sst2_splits, unlabelled_texts=sst2_splits.unlabelled_texts[:200])
    logits = dict(transfer_logits, unlabelled=transfer_logits["unlabelled"][:200])
    size = len(splits.labelled_texts) + len(splits.unlabelled_texts)
    config = DistillConfig(augment_to=2 * size)
    grown, grown_logits = pipeline.augment_transfer_set(teacher, teacher_dir, splits, logits, config)
    extra = grown.unlabelled_texts[200:]
    # One copy of each text, less those no perturbation changed (short SST-2 phrases often).
    assert 0.5 * size < len(extra) <= size
    assert np.array_equal(grown.labelled_texts, splits.labelled_texts)
    assert grown_logits["unlabelled"].shape == (len(grown.unlabelled_texts), splits.num_classes)
    np.testing.assert_allclose(grown_logits["unlabelled"][:200], logits["unlabelled"])
    # The copies' logits are the teacher's own.
    np.testing.assert_allclose(
        grown_logits["unlabelled"][200:264], teacher_lib.logits(teacher, list(extra[:64]), verbose=False), atol=1e-4
    )
    unchanged = pipeline.augment_transfer_set(teacher, teacher_dir, splits, logits, DistillConfig(augment_to=0))
    assert unchanged[0] is splits and unchanged[1] is logits


def test_vocabulary_words_are_the_teachers_whole_words_left_out_of_the_texts(teacher):
    vocabulary = teacher.preprocessor.tokenizer.get_vocabulary()
    words = augment.vocabulary_words(vocabulary, exclude={"the", "film"})
    assert "movie" in words and "excellent" in words
    assert "the" not in words and "film" not in words
    assert not any(w.startswith("##") or w in ("[CLS]", "[UNK]", "[unused0]", "!", "1996") for w in words)
    assert 20_000 < len(words) < len(vocabulary)


def test_pipeline_adds_the_vocabulary_words_with_teacher_logits(teacher, teacher_dir, sst2_splits, transfer_logits,
                                                                monkeypatch):
    splits = dataclasses.replace(sst2_splits, unlabelled_texts=sst2_splits.unlabelled_texts[:200])
    logits = dict(transfer_logits, unlabelled=transfer_logits["unlabelled"][:200])
    # Labelling all 22k words takes a minute here: the first 64 the real rule keeps stand for them.
    vocabulary_words = augment.vocabulary_words
    monkeypatch.setattr(augment, "vocabulary_words", lambda *args, **kwargs: vocabulary_words(*args, **kwargs)[:64])
    config = DistillConfig(augment_to=0, vocabulary_words=True)
    grown, grown_logits = pipeline.augment_transfer_set(teacher, teacher_dir, splits, logits, config)
    words = list(grown.unlabelled_texts[200:])
    assert words == vocabulary_words(teacher.preprocessor.tokenizer.get_vocabulary(),
                                     exclude=np.concatenate([splits.labelled_texts, splits.unlabelled_texts]))[:64]
    np.testing.assert_allclose(grown_logits["unlabelled"][200:], teacher_lib.logits(teacher, words, verbose=False),
                               atol=1e-4)


@pytest.fixture(scope="module")
def mpqa_splits():
    return data.load(MPQA, num_labels=200, seed=0, max_unlabelled=300)


def test_phrases_keep_the_whole_vocabulary_and_learn_its_words(ag_texts, mpqa_splits):
    """The auto rule: MPQA's phrases (median 2 words) are phrases; SST-2's (7) and AG News' items (37) are not."""
    sst2 = data.load(SST2, num_labels=200, seed=0, max_unlabelled=0).labelled_texts
    mpqa = mpqa_splits.labelled_texts
    assert augment.phrases(mpqa) and not augment.phrases(sst2) and not augment.phrases(ag_texts)
    assert not augment.phrases([])
    assert StudentConfig().pieces_kept(mpqa) == 0 and StudentConfig().pieces_kept(sst2) == 7000
    assert StudentConfig(vocabulary_size="3000").pieces_kept(mpqa) == 3000  # a number given is kept
    assert DistillConfig().adds_vocabulary_words(mpqa) and not DistillConfig().adds_vocabulary_words(sst2)
    assert DistillConfig(vocabulary_words=True).adds_vocabulary_words(sst2)
    assert not DistillConfig(vocabulary_words="off").adds_vocabulary_words(mpqa)
    with pytest.raises(ValueError, match="neither 'auto' nor a number"):
        StudentConfig(vocabulary_size="all")


def test_a_phrase_task_student_keeps_every_piece_of_the_teacher(teacher, mpqa_splits):
    vocabulary = teacher.preprocessor.tokenizer.get_vocabulary()
    small = StudentConfig(embedding_dim=16, filters=16, kernel_sizes=(2, 3))
    student = training.build_student(teacher, mpqa_splits, small)
    pruned = training.build_student(teacher, mpqa_splits, dataclasses.replace(small, vocabulary_size=2000))
    # 500 phrases hold about 1,000 distinct pieces: the pruned student keeps those alone.
    assert student.tokenizer.vocabulary_size == len(vocabulary) > 20 * pruned.tokenizer.vocabulary_size
    # A word of the teacher's that these 500 phrases never show: [UNK] to the pruned student only.
    unseen = "cathedral"
    assert unseen in vocabulary and not any(unseen in str(t) for t in (*mpqa_splits.labelled_texts, *mpqa_splits.unlabelled_texts))
    unk = vocabulary.index("[UNK]")

    def first_piece(model):
        return model.tokenizer.student_vocabulary()[int(np.asarray(model.tokenizer([unseen]))[0, 0])]

    assert first_piece(student) == unseen and first_piece(pruned) == "[UNK]"
    # A run says which it is.
    assert pipeline._pieces_kept(student) == f"the teacher's whole vocabulary, {len(vocabulary):,} pieces"
    assert pipeline._pieces_kept(pruned) == f"{pruned.tokenizer.vocabulary_size:,} of the teacher's {len(vocabulary):,} pieces"
