import keras
import numpy as np

from kdistill import teacher as teacher_lib
from kdistill.teacher_model import MaskedMeanPooling, MeanPooledBertClassifier, mixture_logits


def test_mean_pooling_ignores_padded_positions():
    sequence = np.arange(2 * 4 * 3, dtype="float32").reshape(2, 4, 3)
    sequence[0, 2:] = 1e6  # padding: must not leak into the mean
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype="int32")
    pooled = keras.ops.convert_to_numpy(MaskedMeanPooling()(sequence, mask))
    np.testing.assert_allclose(pooled, [sequence[0, :2].mean(0), sequence[1].mean(0)])


def test_mean_pooling_of_an_empty_row_is_zero_not_nan():
    pooled = MaskedMeanPooling()(np.ones((1, 3, 2), "float32"), np.zeros((1, 3), "int32"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(pooled), [[0.0, 0.0]])


def test_teacher_classifies_from_the_mean_of_its_token_vectors(pretrained_teacher, sst2_splits):
    assert isinstance(pretrained_teacher, MeanPooledBertClassifier)
    features = pretrained_teacher.preprocessor(keras.ops.convert_to_tensor(list(sst2_splits.dev_texts[:4])))
    sequence = pretrained_teacher.backbone(features)["sequence_output"]
    mask = keras.ops.cast(features["padding_mask"], "float32")[..., None]
    mean = keras.ops.sum(sequence * mask, axis=1) / keras.ops.sum(mask, axis=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(pretrained_teacher.output_dense(mean)),
        keras.ops.convert_to_numpy(pretrained_teacher(features, training=False)),
        atol=1e-4,
    )


def test_the_teacher_reads_the_sequence_length_it_is_built_with(tmp_path):
    # MiniLM's folder asks for 256 pieces (sentence_bert_config.json); the teacher's config decides.
    model = teacher_lib.build("minilm", 2, sequence_length=48)
    texts = ["word " * 100]
    features = model.preprocessor(keras.ops.convert_to_tensor(texts))
    assert keras.ops.shape(features["token_ids"]) == (1, 48)
    assert teacher_lib.truncated_texts(model, texts) == 1
    teacher_lib.save(model, str(tmp_path))
    assert teacher_lib.load(str(tmp_path)).preprocessor.sequence_length == 48


def test_mixture_logits_average_the_members_probabilities():
    confident_yes, confident_no = np.log([[0.9, 0.1]]), np.log([[0.2, 0.8]])
    mixture = keras.ops.convert_to_numpy(mixture_logits(np.stack([confident_yes, confident_no])))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(mixture)), [[0.55, 0.45]], atol=1e-6)
    # Logits a float32 softmax underflows on stay finite.
    assert np.isfinite(keras.ops.convert_to_numpy(mixture_logits(np.array([[[0.0, -200.0]]] * 2)))).all()
