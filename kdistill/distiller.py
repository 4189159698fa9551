"""`Distiller`: a `keras.Model` that trains the student against a frozen teacher.

loss = alpha * cross-entropy(labels, student)          on the rows that carry a label
     + (1 - alpha) * distillation(teacher, student)    on every row
     + vector_weight * (1 - cos(W f, v))               on every row that carries v

where distillation is the KL divergence between temperature-softened
distributions (scaled by T^2, Hinton et al. 2015) or the mean squared error
between raw logits (Ba & Caruana 2014; Chia et al. 2018). The last term, off by
default, matches a linear projection W of the student's pooled features f to the
teacher's sentence vector v (`teacher.sentence_vectors`): hundreds of numbers per
text instead of a few logits. W belongs to the distiller, not the student, so the
exported student is the same size and speed with or without it.

Inputs are raw strings, or a dict `{"text": strings, "teacher_logits": floats}`
when the teacher's logits were computed ahead (the normal case: the teacher is
the expensive part), plus `"teacher_vectors"` for the sentence-vector term. With
every batch carrying them the teacher may be `None` (a sweep over cached outputs).
A dict may carry the student's `"token_ids"` instead of (or beside) the text,
tokenised in the input pipeline: string ops then stay on the host, which TPUs
need; the student may then be its bare id-level network
(`student.conv_classifier`). Labels are class ids, with -1 for unlabelled rows.
Only the student's weights train; `fit`, `evaluate` and callbacks work as usual.

Under a `tf.distribute` strategy each replica returns its share of the global
mean: its summed loss over the global row count, and its summed label loss
over the global count of labelled rows (`distribute.global_sum`), so the
summed gradients equal one device's on the same global batch.

Example:

```python
distiller = Distiller(teacher, student)
distiller.compile(optimizer="adam", alpha=0.1, temperature=2.0, metrics=["accuracy"])
distiller.fit(dataset_of_text_logits_and_labels, epochs=3)
distiller.evaluate(dev_texts, dev_labels)
```
"""

import keras

from kdistill import distribute

LOSSES = ("kl", "mse")
FEATURES_LAYER = "features"
# The loss's defaults, which `config.DistillConfig` takes too. SST-2, N=1000 (dev accuracy,
# 4 epochs): alpha 0.5 -> 77.0%, 0.1 -> 79.6%, 0.0 -> 79.1%. With ~2 labelled rows per batch
# a heavier label term overfits those rows.
DEFAULT_ALPHA = 0.1
DEFAULT_TEMPERATURE = 2.0


@keras.saving.register_keras_serializable(package="kdistill")
class Distiller(distribute.StrategyFitFixes, keras.Model):
    def __init__(self, teacher, student, **kwargs):
        super().__init__(**kwargs)
        self.teacher = teacher
        if teacher is not None:
            self.teacher.trainable = False
        self.student = student
        # The id-level network: a `Student`'s classifier, or the student itself when it is one.
        self.network = getattr(student, "classifier", student)
        self.alpha = 0.5
        self.temperature = 2.0
        self.distillation_loss = "kl"
        self.vector_weight = 0.0
        self.projection = None
        self.built = True  # teacher and student come built; the distiller adds no weights until compiled

    def compile(
        self,
        optimizer="adam",
        metrics=None,
        alpha=DEFAULT_ALPHA,
        temperature=DEFAULT_TEMPERATURE,
        distillation_loss="kl",
        vector_weight=0.0,
        vector_dim=None,
        jit_compile=False,  # string ops (tokenisers) cannot run under XLA
        **kwargs,
    ):
        """`vector_weight` > 0 turns on the sentence-vector term; `vector_dim` is the teacher's
        vector width (its hidden size when there is a teacher to read it from)."""
        if distillation_loss not in LOSSES:
            raise ValueError(f"distillation_loss must be one of {LOSSES}, got {distillation_loss!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if vector_weight < 0:
            raise ValueError(f"vector_weight must be at least 0, got {vector_weight}")
        # Keras applies sample weights only to `weighted_metrics`; compute_metrics weighs
        # unlabelled rows by zero, so the metrics must go there to score labelled rows only.
        if metrics is not None:
            kwargs["weighted_metrics"] = list(metrics) + list(kwargs.get("weighted_metrics") or [])
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.distillation_loss = distillation_loss
        self.vector_weight = float(vector_weight)
        if self.vector_weight and self.projection is None:
            self._build_projection(vector_dim)

    def _build_projection(self, vector_dim):
        if vector_dim is None:
            if self.teacher is None:
                raise ValueError("vector_weight needs vector_dim when the distiller has no teacher")
            vector_dim = self.teacher.backbone.hidden_dim
        features = self.network.get_layer(FEATURES_LAYER).output
        # One graph with both outputs, sharing the network's layers: one forward pass feeds both terms.
        self.network_with_features = keras.Model(self.network.inputs, [self.network.outputs[0], features])
        self.projection = keras.layers.Dense(int(vector_dim), name="sentence_projection")
        self.projection.build(features.shape)

    def call(self, inputs, training=False):
        ids = inputs.get("token_ids") if isinstance(inputs, dict) else None
        if training and self.projection is not None and isinstance(inputs, dict) and "teacher_vectors" in inputs:
            if ids is None:
                ids = self.student.tokenizer(_texts(inputs))
            logits, features = self.network_with_features(ids, training=training)
            # The loss reads the projection; metrics and callers see the logits (`_logits`).
            return {"logits": logits, "projected": self.projection(features)}
        if ids is not None:
            return self.network(ids, training=training)
        return self.student(_texts(inputs), training=training)

    def teacher_logits(self, inputs):
        """Precomputed logits when the batch carries them, else the frozen teacher's output."""
        if isinstance(inputs, dict) and "teacher_logits" in inputs:
            return keras.ops.cast(inputs["teacher_logits"], "float32")
        if self.teacher is None:
            raise ValueError("a distiller without a teacher needs batches that carry 'teacher_logits'")
        texts = _texts(inputs)
        return keras.ops.stop_gradient(self.teacher(self.teacher.preprocessor(texts), training=False))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits = _logits(y_pred)
        loss = (1.0 - self.alpha) * self._distillation(self.teacher_logits(x), logits)
        if y is not None and self.alpha > 0.0:
            loss = self.alpha * _labelled_cross_entropy(y, logits) + loss
        if isinstance(y_pred, dict):
            loss = loss + self.vector_weight * _cosine_distance(y_pred["projected"], x["teacher_vectors"])
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is None:
            return self.get_metrics_result()
        # Unlabelled rows (-1) must not count as wrong answers.
        labelled = keras.ops.cast(keras.ops.greater_equal(y, 0), "float32")
        return super().compute_metrics(x, keras.ops.maximum(y, 0), _logits(y_pred), sample_weight=labelled)

    def _distillation(self, teacher_logits, student_logits):
        if self.distillation_loss == "mse":
            per_row = keras.ops.mean(keras.ops.square(student_logits - teacher_logits), axis=-1)
            return _global_mean(per_row)
        t = self.temperature
        teacher_probs = keras.ops.softmax(teacher_logits / t, axis=-1)
        # Per row, not Keras' mean: under a strategy Keras' reduction divides by the replica
        # count, which assumes equal replica batches; _global_mean divides by the true total.
        kl = keras.losses.KLDivergence(reduction=None)
        # Gradients of the softened KL shrink as 1/T^2; scaling by T^2 keeps the
        # balance with the cross-entropy term independent of the temperature.
        return _global_mean(kl(teacher_probs, keras.ops.softmax(student_logits / t, axis=-1))) * t * t

    def get_config(self):
        config = super().get_config()
        config.update(
            teacher=keras.saving.serialize_keras_object(self.teacher),
            student=keras.saving.serialize_keras_object(self.student),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        teacher = keras.saving.deserialize_keras_object(config.pop("teacher"))
        student = keras.saving.deserialize_keras_object(config.pop("student"))
        return cls(teacher, student, **config)

    def get_compile_config(self):
        config = super().get_compile_config() or {}
        config.update(
            alpha=self.alpha, temperature=self.temperature, distillation_loss=self.distillation_loss,
            vector_weight=self.vector_weight,
            vector_dim=None if self.projection is None else self.projection.units,
        )
        return config

    def compile_from_config(self, config):
        if not config:
            return
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)


def _texts(inputs):
    return inputs["text"] if isinstance(inputs, dict) else inputs


def _logits(y_pred):
    return y_pred["logits"] if isinstance(y_pred, dict) else y_pred


def _cosine_distance(projected, vectors):
    """Mean of 1 - cosine similarity: the direction of the teacher's vector, whatever its length."""
    projected = keras.ops.cast(projected, "float32")
    vectors = keras.ops.cast(vectors, "float32")
    norms = keras.ops.norm(projected, axis=-1) * keras.ops.norm(vectors, axis=-1)
    cosine = keras.ops.sum(projected * vectors, axis=-1) / keras.ops.maximum(norms, 1e-6)
    return _global_mean(1.0 - cosine)


def _labelled_cross_entropy(labels, logits):
    """Mean cross-entropy over the rows whose label is not -1 (zero if there are none)."""
    labels = keras.ops.reshape(labels, (-1,))
    labelled = keras.ops.cast(keras.ops.greater_equal(labels, 0), "float32")
    per_row = keras.losses.sparse_categorical_crossentropy(
        keras.ops.maximum(labels, 0), logits, from_logits=True
    )
    return _global_mean(per_row, labelled)


def _global_mean(per_row, weights=None):
    """This replica's share of the weighted mean of `per_row` over the whole global batch.

    One device: the plain (weighted) mean. Under a strategy: the local weighted sum
    over the global total weight, so that the replicas' shares (and gradients) add
    up to the global mean even when replicas hold different numbers of rows or of
    labelled rows (with ~2 labelled rows in 128, they usually do).
    """
    per_row = keras.ops.cast(per_row, "float32")
    weights = keras.ops.ones_like(per_row) if weights is None else keras.ops.cast(weights, "float32")
    total = distribute.global_sum(keras.ops.stop_gradient(keras.ops.sum(weights)))
    return keras.ops.sum(per_row * weights) / keras.ops.maximum(total, 1.0)
