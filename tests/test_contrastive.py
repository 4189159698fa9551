"""`contrastive`: SetFit's pair draw, and its stage pulling a real MiniLM's same-class sentence vectors together."""

import numpy as np
import pytest

from kdistill import contrastive, teacher as teacher_lib
from kdistill.errors import KdistillError


def test_every_text_gets_partners_of_its_class_and_of_others():
    labels = np.array([0, 0, 1, 1, 1, 2, 2])
    first, second, target = contrastive.pairs(labels, pairs_per_text=4, seed=0)
    assert len(first) == 2 * 2 * len(labels)  # two rounds, one similar and one dissimilar pair per text each
    assert np.all(first != second)
    np.testing.assert_array_equal(target, (labels[first] == labels[second]).astype(np.float32))
    assert np.bincount(first, minlength=len(labels)).tolist() == [4] * len(labels)
    assert np.bincount(first[target == 1], minlength=len(labels)).tolist() == [2] * len(labels)
    # A class of one text has no similar partner: it gets its dissimilar pairs only.
    lonely = contrastive.pairs(np.array([0, 0, 1]), pairs_per_text=2, seed=0)
    assert lonely[2][lonely[0] == 2].tolist() == [0.0]
    again = contrastive.pairs(labels, pairs_per_text=4, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((first, second, target), again))


def separation(teacher, texts, labels):
    """Mean cosine of same-class pairs minus that of different-class pairs of the texts' sentence vectors."""
    vectors = teacher_lib.sentence_vectors(teacher, texts, verbose=False).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine, same = vectors @ vectors.T, labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    return cosine[same & off_diagonal].mean() - cosine[~same].mean()


def test_the_pair_model_compares_the_very_vectors_the_teacher_labels_with(pretrained_teacher, sst2_splits):
    texts = list(sst2_splits.dev_texts[:6])
    vectors = teacher_lib.sentence_vectors(pretrained_teacher, texts, verbose=False).astype(np.float32)
    features = teacher_lib.tokenize(pretrained_teacher, texts)
    cosine = contrastive.pair_model(pretrained_teacher).predict([features, {k: v[::-1] for k, v in features.items()}],
                                                               verbose=0)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(cosine, np.sum(unit * unit[::-1], axis=1), atol=2e-3)


@pytest.mark.slow  # a MiniLM fine-tune step traces for about 20 s
def test_the_stage_pulls_same_class_sentences_together(sst2_splits):
    teacher = teacher_lib.build(num_classes=2, sequence_length=64)
    texts, labels = sst2_splits.labelled_texts[:64], np.asarray(sst2_splits.labelled_labels[:64])
    before = separation(teacher, texts, labels)
    contrastive.fine_tune_encoder(teacher, texts, labels, pairs_per_text=4, learning_rate=2e-4, verbose=0)
    after = separation(teacher, texts, labels)
    assert after > before + 0.05, (before, after)  # measured: 0.017 -> 0.179


def test_a_cls_pooled_teacher_is_refused_in_one_line():
    teacher = teacher_lib.build(num_classes=2, sequence_length=32, pooling="cls")
    with pytest.raises(KdistillError, match="--teacher_pooling=mean"):
        contrastive.pair_model(teacher)
