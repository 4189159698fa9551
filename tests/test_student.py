import keras
import numpy as np
import pytest
import tensorflow as tf

from kdistill import io
from kdistill import student as student_lib
from kdistill import tokenizer as tokenizer_lib
from kdistill import training
from kdistill.config import StudentConfig
from kdistill.distiller import Distiller


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


def test_padding_does_not_reach_the_logits(vocabulary, sst2_splits):
    student = _student(vocabulary, sst2_splits.unlabelled_texts, sequence_length=32)
    texts = ["a charming film", "dull", ""]
    before = student.predict_texts(texts)
    embedding = student.classifier.get_layer("token_embedding")
    table = embedding.get_weights()[0]
    table[0] = 1e3  # the [PAD] row: masked pooling must ignore it
    embedding.set_weights([table])
    np.testing.assert_allclose(student.predict_texts(texts), before, atol=1e-5)
    assert np.isfinite(before).all()


def test_batches_cut_to_their_longest_text_give_the_same_logits(vocabulary, sst2_splits):
    """Distillation trains on batches cut to their longest text (`training.transfer_dataset`): the student's
    logits of a cut batch are those of the full-width one, with a random head so the check reaches every
    convolution width."""
    student = _student(vocabulary, sst2_splits.unlabelled_texts, sequence_length=64, kernel_sizes=(2, 3, 4, 5))
    ids = training.student_token_ids(student, sst2_splits.unlabelled_texts[:300])
    assert ids.shape == (300, 64)
    any_width = tf.function(lambda x: student.classifier(x, training=False),
                            input_signature=[tf.TensorSpec([None, None], tf.int32)])
    for batch in (ids[:128], ids[128:256], ids[256:]):
        cut = tokenizer_lib.trim_padding(batch)
        assert cut.shape[1] < 64 and (batch[:, cut.shape[1]:] == 0).all()
        assert cut.shape[1] == (batch != 0).sum(axis=1).max()
        np.testing.assert_allclose(any_width(cut).numpy(), any_width(batch).numpy(), atol=1e-5)
        np.testing.assert_array_equal(tokenizer_lib.trim_padding(tf.constant(batch)).numpy(), cut)  # streamed shards
    assert tokenizer_lib.trim_padding(np.zeros((2, 64), np.int32)).shape == (2, 1)


def test_batches_convolved_in_length_sorted_parts_give_the_whole_batchs_logits_and_gradients(vocabulary, sst2_splits):
    """On a CPU `Distiller` sorts each batch's rows by length and convolves them as `CPU_BATCH_PARTS` slices, each
    cut to its longest text (`compile(batch_parts=...)`): the same logits, in the batch's order, the same loss and
    the same gradients as one call on the whole batch, so the recipe is unchanged and only its speed differs."""
    student = _student(vocabulary, sst2_splits.unlabelled_texts, sequence_length=64, kernel_sizes=(2, 3, 4, 5))
    ids = training.student_token_ids(student, sst2_splits.unlabelled_texts[:300])
    logits = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    labels = np.where(np.arange(300) % 7 == 0, np.arange(300) % 2, -1).astype(np.int32)
    batches = list(training.transfer_dataset(ids, logits, labels, 32, io.EpochOrder(5)))
    assert [len(y) for _, y in batches] == [32] * 9 + [12]
    by_parts, at_once = Distiller(None, student), Distiller(None, student)
    by_parts.compile(alpha=0.5, temperature=2.0, batch_parts=4)
    at_once.compile(alpha=0.5, temperature=2.0)
    assert by_parts.get_compile_config()["batch_parts"] == 4

    # Traced for ids of any width, as `fit` traces its step.
    @tf.function(input_signature=[{"token_ids": tf.TensorSpec([None, None], tf.int32),
                                   "teacher_logits": tf.TensorSpec([None, 2], tf.float32)},
                                  tf.TensorSpec([None], tf.int32)])
    def both_ways(x, y):
        with tf.GradientTape(persistent=True) as tape:
            outputs = [by_parts(x), at_once(x)]
            losses = [by_parts.compute_loss(x, y, outputs[0]), at_once.compute_loss(x, y, outputs[1])]
        gradients = [[tf.convert_to_tensor(g) for g in tape.gradient(loss, student.trainable_variables)]
                     for loss in losses]
        return outputs, losses, gradients

    def check(x, y):
        outputs, losses, gradients = both_ways(x, y)
        np.testing.assert_allclose(outputs[0].numpy(), outputs[1].numpy(), atol=1e-5)
        np.testing.assert_allclose(losses[0].numpy(), losses[1].numpy(), rtol=1e-5)
        for a, b in zip(*gradients):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)

    widths = []
    for x, y in batches:
        lengths = (x["token_ids"].numpy() != 0).sum(axis=1)
        assert not (np.diff(lengths) >= 0).all()  # shuffled rows: the distiller, not the batches, sorts them
        widths.append(x["token_ids"].shape[1])
        check(x, y)
    assert len(set(widths)) > 1  # batches of several widths, each cut to its longest text
    # A last batch of fewer rows than parts: every part holds one row, the longest repeated, and nothing is
    # counted twice.
    last, = list(training.transfer_dataset(ids[:259], logits[:259], labels[:259], 128, io.EpochOrder(0)))[2:]
    assert len(last[1]) == 3
    check(*last)


def test_student_round_trips_through_keras_file(vocabulary, sst2_splits, tmp_path):
    student = _student(vocabulary, sst2_splits.unlabelled_texts, class_names=["neg", "pos"], sequence_length=48)
    path = str(tmp_path / "student.keras")
    student.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    texts = list(sst2_splits.dev_texts[:20])
    np.testing.assert_allclose(again.predict_texts(texts), student.predict_texts(texts), atol=1e-6)
    assert again.class_names == ["neg", "pos"]
    assert again.tokenizer.kept_ids == student.tokenizer.kept_ids
    assert again.network["sequence_length"] == 48


def test_mean_pooling_counts_real_tokens_only():
    features = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 5.0], [5.0, 5.0], [5.0, 5.0]]], np.float32)
    token_ids = np.array([[7, 9, 0], [0, 0, 0]])
    pooled = student_lib.MaskedGlobalAveragePooling1D()(features, token_ids)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pooled), [[2.0, 3.0], [0.0, 0.0]])


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
    # The logits read the max and the mean of each branch's 16 filters.
    assert student.count_params() == 3000 * 32 + (3 * 32 * 16 + 16) + (5 * 32 * 16 + 16) + (2 * 32 * 2 + 2)
    assert student.class_names == sst2_splits.class_names


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


def test_multiply_adds_count_every_convolution():
    default = student_lib.conv_classifier(7000, 2, **StudentConfig().network_kwargs())
    assert student_lib.conv_multiply_adds(default) == 64 * 64 * 128 * (2 + 3 + 4 + 5)
    separable = student_lib.conv_classifier(7000, 2, 64, 64, 128, kernel_sizes=(3,), separable=True)
    assert student_lib.conv_multiply_adds(separable) == 64 * 64 * (3 + 128)
