"""The teacher's network: a BERT backbone with a mean-pooled classification head.

keras-hub's `BertTextClassifier` classifies from the `[CLS]` pooler. MiniLM-L6
(`all-MiniLM-L6-v2`) was trained as a sentence encoder on the *mean* of its token
vectors; its pooler was never trained for that. Classifying from the masked mean
of the token vectors starts fine-tuning from the representation the model was
built for, which matters most when labels are few.

`TeacherEnsemble` puts several fine-tuned teachers behind one teacher's interface.
keras-hub's own `[CLS]` head measured 2.1 points lower at N=100 on SST-2 and the same
at N=1000 (docs/IDEAS.md), so the mean-pooled head is the only one.

Example:

```python
classifier = MeanPooledBertClassifier.from_preset(folder, num_classes=2, sequence_length=64)
classifier.predict(["a gripping, funny film"])
```
"""

import keras
import keras_hub

from kdistill.distribute import StrategyFitFixes


@keras.saving.register_keras_serializable(package="kdistill")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean over the positions the padding mask marks as real tokens."""

    def call(self, sequence, padding_mask):
        mask = keras.ops.expand_dims(keras.ops.cast(padding_mask, sequence.dtype), -1)
        total = keras.ops.sum(sequence * mask, axis=1)
        return total / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0)

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[-1])


@keras.saving.register_keras_serializable(package="kdistill")
class MeanPooledBertClassifier(StrategyFitFixes, keras_hub.models.BertTextClassifier):
    """`BertTextClassifier` with the `[CLS]` pooler replaced by a masked mean of token vectors.

    Same constructor, preprocessor, presets and config as its parent, so it loads
    with `from_preset` and saves to `.keras` like it.
    """

    def __init__(self, backbone, num_classes, preprocessor=None, activation=None, dropout=0.1, **kwargs):
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.mean_pooling = MaskedMeanPooling(dtype=backbone.dtype_policy, name="mean_pooling")
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="classifier_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            activation=activation,
            dtype=backbone.dtype_policy,
            name="logits",
        )
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        pooled = self.mean_pooling(sequence, inputs["padding_mask"])
        outputs = self.output_dense(self.output_dropout(pooled))
        # Skip BertTextClassifier.__init__ (it builds the [CLS] graph); Task's init takes ours.
        keras_hub.models.TextClassifier.__init__(self, inputs=inputs, outputs=outputs, **kwargs)
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout


def mixture_logits(member_logits):
    """Logits of the mean of the members' class probabilities (`member_logits`: members first).

    A mixture, not a mean of logits: where members disagree its soft targets say so, as
    each member's own probabilities would. Computed in log space, so confident members
    cannot underflow it to -inf.
    """
    log_probs = keras.ops.log_softmax(keras.ops.convert_to_tensor(member_logits, "float32"), axis=-1)
    members = keras.ops.cast(keras.ops.shape(log_probs)[0], "float32")
    return keras.ops.logsumexp(log_probs, axis=0) - keras.ops.log(members)


@keras.saving.register_keras_serializable(package="kdistill")
class TeacherEnsemble(keras.Model):
    """Teachers fine-tuned on the same labels with different seeds, answering as one (`mixture_logits`).

    Members share the first member's preprocessor (one preset); its backbone is the one
    the student borrows its vocabulary and embeddings from. `cache_dirs` are the members'
    own folders: `teacher.logits` caches each member's logits there, so a member that
    is also a single teacher elsewhere labels no text twice.

    Example:

    ```python
    ensemble = TeacherEnsemble([teacher.load("runs/a"), teacher.load("runs/b")])
    ensemble.predict_on_batch(ensemble.preprocessor(["a gripping, funny film"]))
    ```
    """

    def __init__(self, members, cache_dirs=None, **kwargs):
        super().__init__(**kwargs)
        self.members = list(members)
        self.cache_dirs = list(cache_dirs) if cache_dirs else [None] * len(self.members)
        self.num_classes = self.members[0].num_classes
        self.built = True  # its members come built; it adds no weights of its own

    @property
    def preprocessor(self):
        return self.members[0].preprocessor

    @preprocessor.setter
    def preprocessor(self, value):  # `teacher.preprocessed` detaches it while batches come tokenised
        self.members[0].preprocessor = value

    @property
    def backbone(self):
        return self.members[0].backbone

    def call(self, inputs, training=False):
        return mixture_logits(keras.ops.stack([member(inputs, training=training) for member in self.members]))

    def get_config(self):
        return {"name": self.name, "members": [keras.saving.serialize_keras_object(m) for m in self.members]}

    @classmethod
    def from_config(cls, config):
        members = [keras.saving.deserialize_keras_object(m) for m in config.pop("members")]
        return cls(members, **config)
