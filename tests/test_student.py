import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from kdistill import student as student_lib
from kdistill import tokenizer as tokenizer_lib
from kdistill import training
from kdistill.config import StudentConfig


@pytest.fixture(scope="module")
def vocabulary(pretrained_teacher):
    return pretrained_teacher.preprocessor.tokenizer.get_vocabulary()


def test_student_tokenizer_splits_like_the_teacher(pretrained_teacher, vocabulary, sst2_splits):
    texts = list(sst2_splits.dev_texts[:200]) + ["Ça m'a beaucoup plu — très émouvant", "THIS Movie Was GREAT!!"]
    ours = tokenizer_lib.StudentTokenizer(vocabulary, sequence_length=128).full_ids(texts).to_list()
    theirs = pretrained_teacher.preprocessor.tokenizer(tf.constant(texts))
    theirs = theirs.to_list() if hasattr(theirs, "to_list") else theirs
    assert ours == theirs


def test_pruned_vocabulary_keeps_specials_and_frequent_pieces(vocabulary, sst2_splits):
    kept = tokenizer_lib.prune_vocabulary(vocabulary, sst2_splits.unlabelled_texts, 2000)
    assert len(kept) == 2000
    assert [vocabulary[i] for i in kept[:5]] == list(tokenizer_lib.SPECIAL_TOKENS)
    assert {"the", "film", "movie", "."} <= {vocabulary[i] for i in kept}
    tokenizer = tokenizer_lib.StudentTokenizer(vocabulary, sequence_length=16, kept_ids=kept)
    ids = tokenizer(["the film", "xylophonist"]).numpy()
    unk = kept.index(vocabulary.index("[UNK]"))
    assert ids.max() < 2000
    assert ids[0, 0] == kept.index(vocabulary.index("the"))
    assert unk in ids[1]  # a rare word's pieces fall back to [UNK]


def test_tokenizer_truncates_and_pads(vocabulary):
    tokenizer = tokenizer_lib.StudentTokenizer(vocabulary, sequence_length=8)
    ids = tokenizer(["good " * 100, "", "good"]).numpy()
    assert ids.shape == (3, 8)
    assert (ids[0] != 0).all() and (ids[1] == 0).all() and (ids[2, 1:] == 0).all()


def _student(vocabulary, texts, **kwargs):
    kept = tokenizer_lib.prune_vocabulary(vocabulary, texts, 1000)
    return student_lib.Student(vocabulary, 2, kept_ids=kept, embedding_dim=16, filters=8, **kwargs)


@pytest.mark.parametrize("pooling", student_lib.POOLINGS)
def test_padding_does_not_reach_the_logits(vocabulary, sst2_splits, pooling):
    student = _student(vocabulary, sst2_splits.unlabelled_texts, sequence_length=32, pooling=pooling)
    texts = ["a charming film", "dull", ""]
    before = student.predict_texts(texts)
    embedding = student.classifier.get_layer("token_embedding")
    table = embedding.get_weights()[0]
    table[0] = 1e3  # the [PAD] row: masked pooling must ignore it
    embedding.set_weights([table])
    np.testing.assert_allclose(student.predict_texts(texts), before, atol=1e-5)
    assert np.isfinite(before).all()


@pytest.mark.parametrize("pooling", student_lib.POOLINGS)
def test_student_round_trips_through_keras_file(vocabulary, sst2_splits, tmp_path, pooling):
    student = _student(vocabulary, sst2_splits.unlabelled_texts, class_names=["neg", "pos"], pooling=pooling)
    path = str(tmp_path / "student.keras")
    student.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    texts = list(sst2_splits.dev_texts[:20])
    np.testing.assert_allclose(again.predict_texts(texts), student.predict_texts(texts), atol=1e-6)
    assert again.class_names == ["neg", "pos"]
    assert again.tokenizer.kept_ids == student.tokenizer.kept_ids
    assert again.network["pooling"] == pooling


def test_mean_pooling_counts_real_tokens_only():
    features = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 5.0], [5.0, 5.0], [5.0, 5.0]]], np.float32)
    token_ids = np.array([[7, 9, 0], [0, 0, 0]])
    pooled = student_lib.MaskedGlobalAveragePooling1D()(features, token_ids)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pooled), [[2.0, 3.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="unknown pooling"):
        student_lib.conv_classifier(100, 2, pooling="min")


def test_projected_embeddings_keep_the_teachers_neighbours(pretrained_teacher, vocabulary):
    table = keras.ops.convert_to_numpy(pretrained_teacher.backbone.token_embedding.embeddings)
    words = ["good", "great", "excellent", "bad", "awful", "terrible", "[PAD]", "[UNK]"]
    ids = [vocabulary.index(w) for w in words]
    kept = [0] + [i for i in ids if i != 0]
    projected = student_lib.projected_embeddings(table, kept, dim=4)
    assert projected.shape == (len(kept), 4)
    assert not projected[0].any()
    good, great, awful = (projected[kept.index(vocabulary.index(w))] for w in ("good", "great", "awful"))
    assert np.linalg.norm(good - great) < np.linalg.norm(good - awful) * 1.5


def test_build_student_from_config(pretrained_teacher, sst2_splits):
    config = StudentConfig(vocabulary_size=3000, embedding_dim=32, filters=16, kernel_sizes=(3, 5))
    student = training.build_student(pretrained_teacher, sst2_splits, config)
    assert student.tokenizer.vocabulary_size == 3000
    # The logits read the max and the mean of each branch's 16 filters (pooling="max_mean").
    assert student.count_params() == 3000 * 32 + (3 * 32 * 16 + 16) + (5 * 32 * 16 + 16) + (2 * 32 * 2 + 2)
    maxed = training.build_student(pretrained_teacher, sst2_splits, dataclasses.replace(config, pooling="max"))
    assert maxed.count_params() == student.count_params() - 32 * 2
    assert student.class_names == sst2_splits.class_names


def test_teacher_output_embeddings_carry_what_the_fine_tuned_teacher_learned(teacher, sst2_splits):
    """Input embeddings put antonyms close (they share contexts); the teacher's outputs set them apart."""
    vocabulary = teacher.preprocessor.tokenizer.get_vocabulary()
    positive, negative = ("good", "great", "best", "fun"), ("bad", "worst", "dull", "boring")

    def sentiment_contrast(init_embeddings):
        config = StudentConfig(vocabulary_size=3000, embedding_dim=32, filters=16, kernel_sizes=(3,),
                               init_embeddings=init_embeddings)
        student = training.build_student(teacher, sst2_splits, config)
        table = student.classifier.get_layer("token_embedding").get_weights()[0]
        kept = list(student.tokenizer.kept_ids)
        rows = {word: table[kept.index(vocabulary.index(word))] for word in positive + negative}
        def cosine(a, b):
            return float(rows[a] @ rows[b] / np.linalg.norm(rows[a]) / np.linalg.norm(rows[b]))
        same = np.mean([cosine(a, b) for group in (positive, negative) for a in group for b in group if a < b])
        opposite = np.mean([cosine(a, b) for a in positive for b in negative])
        print(f"{init_embeddings}: same sentiment {same:.3f}, opposite {opposite:.3f}")
        return same - opposite

    # Measured on this fixture: 1.63 against 0.16.
    assert sentiment_contrast("teacher_outputs") > sentiment_contrast("teacher") + 0.8


def test_separable_student_has_fewer_weights_and_round_trips(pretrained_teacher, sst2_splits, tmp_path):
    config = StudentConfig(vocabulary_size=3000, embedding_dim=32, filters=16, kernel_sizes=(3, 5), separable=True)
    student = training.build_student(pretrained_teacher, sst2_splits, config)
    # Each branch: a width-k filter per embedding channel, then a 1x1 mix to the filters.
    branches = sum(k * 32 + 32 * 16 + 16 for k in (3, 5))
    assert student.count_params() == 3000 * 32 + branches + (2 * 32 * 2 + 2)
    path = str(tmp_path / "separable.keras")
    student.save(path)
    again = keras.saving.load_model(path)
    texts = list(sst2_splits.dev_texts[:8])
    np.testing.assert_allclose(again.predict_texts(texts), student.predict_texts(texts), atol=1e-6)


def test_dilated_and_stacked_shapes_have_the_weights_their_layers_imply():
    vocab, emb, filters, classes = 500, 16, 8, 3
    dilated = student_lib.conv_classifier(vocab, classes, 32, emb, filters, architecture="dilated", dilations=(1, 2),
                                          pooling="max_mean")
    convs = (3 * emb * filters + filters) + 2 * (3 * filters * filters + filters)
    # Three stages (the stem and two residual convolutions), each pooled by max and mean.
    assert dilated.count_params() == vocab * emb + convs + (3 * 2 * filters * classes + classes)
    stacked = student_lib.conv_classifier(vocab, classes, 32, emb, filters, kernel_sizes=(2, 3), architecture="stacked",
                                          pooling="max", hidden_units=10)
    convs = (2 * emb * filters + filters) + (3 * emb * filters + filters) + (3 * 2 * filters * filters + filters)
    pooled = 2 * filters + filters  # the concatenated branches, then the convolution over them
    assert stacked.count_params() == vocab * emb + convs + (pooled * 10 + 10) + (10 * classes + classes)


def test_multiply_adds_count_every_convolution():
    default = student_lib.conv_classifier(7000, 2, **StudentConfig().network_kwargs())
    assert student_lib.conv_multiply_adds(default) == 64 * 64 * 128 * (2 + 3 + 4 + 5)
    separable = student_lib.conv_classifier(7000, 2, 64, 64, 128, kernel_sizes=(3,), separable=True)
    assert student_lib.conv_multiply_adds(separable) == 64 * 64 * (3 + 128)
    dilated = student_lib.conv_classifier(7000, 2, 64, 64, 128, architecture="dilated", dilations=(1, 2))
    assert student_lib.conv_multiply_adds(dilated) == 64 * 64 * 128 * 3 + 2 * 64 * 128 * 128 * 3


def test_dilated_student_round_trips_through_keras_file(pretrained_teacher, sst2_splits, tmp_path):
    config = StudentConfig(vocabulary_size=3000, embedding_dim=32, filters=16, architecture="dilated",
                                    dilations=(1, 2), hidden_units=8)
    student = training.build_student(pretrained_teacher, sst2_splits, config)
    path = str(tmp_path / "dilated.keras")
    student.save(path)
    again = keras.saving.load_model(path)
    assert [again.network[k] for k in ("architecture", "dilations", "hidden_units")] == ["dilated", [1, 2], 8]
    texts = list(sst2_splits.dev_texts[:8])
    np.testing.assert_allclose(again.predict_texts(texts), student.predict_texts(texts), atol=1e-6)


def test_token_dropout_drops_whole_words_while_training_only():
    network = student_lib.conv_classifier(500, 2, 16, 8, 4, kernel_sizes=(2,), token_dropout=0.5)
    plain = student_lib.conv_classifier(500, 2, 16, 8, 4, kernel_sizes=(2,))
    assert network.count_params() == plain.count_params()  # nothing to export: only training changes
    ids = np.arange(1, 17, dtype="int32")[None].repeat(64, axis=0)
    dropped = keras.Model(network.input, network.get_layer("token_dropout").output)
    vectors = keras.ops.convert_to_numpy(dropped(ids, training=True))
    zeroed = np.all(vectors == 0, axis=-1)
    assert 0.4 < zeroed.mean() < 0.6
    assert np.all(np.any(vectors != 0, axis=-1) == np.all(vectors != 0, axis=-1))  # a token goes whole or stays
    np.testing.assert_array_equal(network(ids, training=False), network(ids, training=False))
    assert not np.any(np.all(keras.ops.convert_to_numpy(dropped(ids, training=False)) == 0, axis=-1))
