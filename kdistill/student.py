"""The convolutional student of Chia et al. (2018): small, fast, text in and logits out.

WordPiece ids -> embeddings -> parallel Conv1D branches of several kernel
widths -> max and mean over time, padding masked out -> dense logits. The student owns
its tokenizer (`StudentTokenizer`), so it is called on raw strings like the
teacher, and the same config that built it is saved with it.

Example:

```python
student = Student(vocabulary, num_classes=2, embedding_dim=64, filters=128)
logits = student(tf.constant(["a gripping, funny film"]))
```
"""

import inspect

import keras
import numpy as np

from kdistill.tokenizer import StudentTokenizer


@keras.saving.register_keras_serializable(package="kdistill")
class ZeroPadding(keras.layers.Layer):
    """Zeroes the embeddings of padding positions (id 0).

    Convolution windows that overhang the end of a text then see zeros, exactly as
    at the start, whatever the [PAD] row of the embedding table has learned.
    """

    def call(self, embeddings, token_ids):
        mask = keras.ops.cast(keras.ops.not_equal(token_ids, 0), embeddings.dtype)
        return embeddings * keras.ops.expand_dims(mask, -1)

    def compute_output_shape(self, embeddings_shape, token_ids_shape=None):
        return embeddings_shape


@keras.saving.register_keras_serializable(package="kdistill")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Max over the time steps that hold a real token (id != 0)."""

    def call(self, features, token_ids):
        mask = keras.ops.expand_dims(keras.ops.not_equal(token_ids, 0), -1)
        lowest = keras.ops.cast(-1e9, features.dtype)
        pooled = keras.ops.max(keras.ops.where(mask, features, lowest), axis=1)
        # An empty text has no token at all: give it zeros, not -1e9.
        return keras.ops.where(keras.ops.any(mask, axis=1), pooled, keras.ops.zeros_like(pooled))

    def compute_output_shape(self, features_shape, token_ids_shape=None):
        return (features_shape[0], features_shape[-1])


@keras.saving.register_keras_serializable(package="kdistill")
class MaskedGlobalAveragePooling1D(keras.layers.Layer):
    """Mean over the time steps that hold a real token (id != 0); zeros for an empty text."""

    def call(self, features, token_ids):
        mask = keras.ops.cast(keras.ops.expand_dims(keras.ops.not_equal(token_ids, 0), -1), features.dtype)
        # Weight each step by 1/length and sum, rather than sum and divide: the same mean, but
        # no 64-step total whose wide range an int8 export must quantise. On the demo student
        # this lifts int8 agreement with Keras from 99.08% to 99.43% (docs/EXPORT.md).
        weights = mask / keras.ops.maximum(keras.ops.sum(mask, axis=1, keepdims=True), 1.0)
        return keras.ops.sum(features * weights, axis=1)

    def compute_output_shape(self, features_shape, token_ids_shape=None):
        return (features_shape[0], features_shape[-1])


def conv_classifier(
    vocabulary_size,
    num_classes,
    sequence_length=64,
    embedding_dim=64,
    filters=128,
    kernel_sizes=(2, 3, 4, 5),
    dropout=0.3,
    separable=False,
    name="conv_classifier",
):
    """The id-level network: `(batch, sequence_length)` int ids -> `(batch, num_classes)` logits.

    One convolution per width in `kernel_sizes` (Kim 2014; Chia et al. 2018), each pooled
    over the text by its maximum and its mean: how much of the text shows a feature, not
    only whether it shows somewhere (max alone measured -0.63 points on SST-2 and -0.90 on
    AG News, docs/IDEAS.md). `separable` uses depthwise-separable convolutions: a width-k
    filter over each input channel, then one 1x1 mix to `filters` channels, about k times
    fewer multiply-adds and weights than a full width-k convolution.
    """
    conv = keras.layers.SeparableConv1D if separable else keras.layers.Conv1D
    token_ids = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, name="token_embedding")(token_ids)
    x = ZeroPadding(name="zero_padding")(x, token_ids)
    x = keras.layers.SpatialDropout1D(dropout / 2, name="embedding_dropout")(x)
    pooled = []
    for width in kernel_sizes:
        h = conv(filters, width, padding="same", activation="relu", name=f"conv_{width}")(x)
        pooled.append(MaskedGlobalMaxPooling1D(name=f"max_over_time_{width}")(h, token_ids))
        pooled.append(MaskedGlobalAveragePooling1D(name=f"mean_over_time_{width}")(h, token_ids))
    x = keras.layers.Concatenate(name="features")(pooled)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(token_ids, logits, name=name)


def conv_multiply_adds(classifier):
    """Multiply-adds per text of the convolutions of `classifier`: the part of the student's cost that grows
    with its shape (the embedding look-up and the logits are small beside it)."""
    total = 0
    for layer in classifier.layers:
        if not isinstance(layer, keras.layers.Conv1D | keras.layers.SeparableConv1D):
            continue
        length, channels = layer.input.shape[1], layer.input.shape[2]
        width = layer.kernel_size[0]
        if isinstance(layer, keras.layers.SeparableConv1D):
            total += length * channels * (width + layer.filters)
        else:
            total += length * channels * layer.filters * width
    return int(total)


# `conv_classifier`'s shape arguments and their defaults: the one list a `Student` takes and saves.
NETWORK_DEFAULTS = {
    parameter.name: parameter.default
    for parameter in inspect.signature(conv_classifier).parameters.values()
    if parameter.default is not inspect.Parameter.empty and parameter.name != "name"
}


@keras.saving.register_keras_serializable(package="kdistill")
class Student(keras.Model):
    """Raw strings -> class logits.

    Args:
        vocabulary: the teacher's WordPiece vocabulary.
        num_classes: number of output classes.
        kept_ids: optional pruned vocabulary (see `tokenizer.prune_vocabulary`).
        lowercase: lower-case text before WordPiece, as uncased BERT teachers do.
        class_names: label names, kept with the model for prediction and export.
        sequence_length, embedding_dim, filters, kernel_sizes, dropout, separable: the shape of the
            network, kept as `student.network` (see `conv_classifier` for each and its default).
    """

    def __init__(self, vocabulary, num_classes, kept_ids=None, lowercase=True, class_names=None, **kwargs):
        # The network's shape: `conv_classifier`'s arguments, with its defaults for those not given.
        # The rest are keras.Model's.
        network = {name: kwargs.pop(name, default) for name, default in NETWORK_DEFAULTS.items()}
        super().__init__(**kwargs)
        # Lists, as a saved config gives them back.
        self.network = {name: list(v) if isinstance(v, (list, tuple)) else v for name, v in network.items()}
        self.tokenizer = StudentTokenizer(vocabulary, network["sequence_length"], kept_ids, lowercase, name="tokenizer")
        self.classifier = conv_classifier(
            self.tokenizer.vocabulary_size, num_classes,
            **{name: tuple(v) if isinstance(v, list) else v for name, v in self.network.items()},
        )
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.built = True

    def call(self, texts, training=False):
        return self.classifier(self.tokenizer(texts), training=training)

    def predict_texts(self, texts, batch_size=256):
        """Logits for a list of strings, batched, without a tf.data pipeline."""
        texts = np.asarray(texts, dtype=object)
        out = [
            keras.ops.convert_to_numpy(self(texts[i : i + batch_size]))
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)

    def set_embeddings(self, matrix):
        self.classifier.get_layer("token_embedding").set_weights([np.asarray(matrix, np.float32)])

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary=self.tokenizer.vocabulary,
            num_classes=self.num_classes,
            kept_ids=self.tokenizer.kept_ids,
            lowercase=self.tokenizer.lowercase,
            class_names=self.class_names,
            **self.network,
        )
        return config


def projected_embeddings(teacher_embeddings, kept_ids, dim, seed=0):
    """The teacher's token embeddings of the kept pieces, PCA-projected to `dim` columns.

    Starting from the teacher's geometry gives rare pieces, which the transfer
    set barely trains, sensible neighbours from the first step.
    """
    rows = np.asarray(teacher_embeddings, np.float64)[np.asarray(kept_ids)]
    centred = rows - rows.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:dim].T
    if projected.shape[1] < dim:  # fewer teacher dimensions than asked: pad with small noise
        extra = np.random.default_rng(seed).normal(0, projected.std(), (len(rows), dim - projected.shape[1]))
        projected = np.concatenate([projected, extra], axis=1)
    # Keras' default embedding init is uniform(-0.05, 0.05); match its scale so the
    # convolutions see inputs of the size their initialisers expect.
    projected *= 0.05 / (projected.std() + 1e-12)
    projected[0] = 0.0  # [PAD]
    return projected.astype(np.float32)
