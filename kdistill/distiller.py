"""`Distiller`: a `keras.Model` that trains the student against a frozen teacher.

loss = alpha * cross-entropy(labels, student)          on the rows that carry a label
     + (1 - alpha) * distillation(teacher, student)    on every row
     + vector_weight * (1 - cos(W f, v))               on every row that carries v
     + mixup_weight * distillation(mix of teachers, student(mix of embeddings))

where distillation is the KL divergence between temperature-softened
distributions (scaled by T^2, Hinton et al. 2015) or the mean squared error
between raw logits (Ba & Caruana 2014; Chia et al. 2018). The last term, off by
default, matches a linear projection W of the student's pooled features f to the
teacher's sentence vector v (`teacher.sentence_vectors`): hundreds of numbers per
text instead of a few logits. W belongs to the distiller, not the student, so the
exported student is the same size and speed with or without it.

The mixup term, also off by default, is the embedding-space interpolation of
MixKD (Liang et al. 2021): each row's (padding-zeroed) token embeddings are mixed
with the next row's, lam * e_i + (1 - lam) * e_next with lam ~ Beta(0.4, 0.4) per
row, and the student's output on the mix is distilled towards the same mix of the
two teachers' softened distributions. Texts between the transfer texts, scored
without running the teacher again: the student generalises from more than the
texts themselves. Only training changes; the student is the same.

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
# Beta(a, a) with a small `a` keeps most mixes near one of their two texts (Zhang et al. 2018 used
# 0.1-0.4; MixKD 0.4), so the targets stay close to ones the teacher gave.
MIXUP_ALPHA = 0.4
# The student layer whose output (token embeddings, padding zeroed) the mixup term interpolates.
EMBEDDINGS_LAYER = "zero_padding"


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
        self.mixup_weight = 0.0
        self.mixup_seed = None
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
        mixup_weight=0.0,
        jit_compile=False,  # string ops (tokenisers) cannot run under XLA
        **kwargs,
    ):
        """`vector_weight` > 0 turns on the sentence-vector term; `vector_dim` is the teacher's
        vector width (its hidden size when there is a teacher to read it from). `mixup_weight` > 0
        turns on the embedding-mixup term."""
        if distillation_loss not in LOSSES:
            raise ValueError(f"distillation_loss must be one of {LOSSES}, got {distillation_loss!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if vector_weight < 0:
            raise ValueError(f"vector_weight must be at least 0, got {vector_weight}")
        if mixup_weight < 0:
            raise ValueError(f"mixup_weight must be at least 0, got {mixup_weight}")
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
        self.mixup_weight = float(mixup_weight)
        if self.mixup_weight and self.mixup_seed is None:
            self._build_mixup()

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

    def _build_mixup(self):
        embeddings = self.network.get_layer(EMBEDDINGS_LAYER).output
        # Two views of the same layers: ids -> embeddings, and embeddings (with the ids that say
        # which positions hold a token) -> logits.
        self.embed = keras.Model(self.network.inputs, embeddings)
        self.network_from_embeddings = keras.Model([embeddings, self.network.inputs[0]], self.network.outputs[0])
        # A fixed stream of mixes: which rows meet follows the seeded shuffle of the transfer set.
        self.mixup_seed = keras.random.SeedGenerator(0)

    def call(self, inputs, training=False):
        ids = inputs.get("token_ids") if isinstance(inputs, dict) else None
        vectors = self.projection is not None and isinstance(inputs, dict) and "teacher_vectors" in inputs
        mixup = self.mixup_weight > 0.0
        if not (training and (vectors or mixup)):
            if ids is not None:
                return self.network(ids, training=training)
            return self.student(_texts(inputs), training=training)
        if ids is None:
            ids = self.student.tokenizer(_texts(inputs))
        # The loss reads the extra outputs; metrics and callers see the logits (`_logits`).
        if vectors:
            logits, features = self.network_with_features(ids, training=training)
            outputs = {"logits": logits, "projected": self.projection(features)}
        else:
            outputs = {"logits": self.network(ids, training=training)}
        if mixup:
            mix = keras.random.beta((keras.ops.shape(ids)[0],), MIXUP_ALPHA, MIXUP_ALPHA, seed=self.mixup_seed)
            outputs.update(mix=mix, mixed_logits=self.mixed_logits(ids, mix, training=training))
        return outputs

    def mixed_logits(self, ids, mix, training=False):
        """The student's logits on `mix * embeddings(row) + (1 - mix) * embeddings(next row)`."""
        embeddings = self.embed(ids, training=training)
        weights = keras.ops.reshape(keras.ops.cast(mix, embeddings.dtype), (-1, 1, 1))
        mixed = weights * embeddings + (1.0 - weights) * _next_row(embeddings)
        # Ids only mark positions for the padding masks: a position holds a token if either text has one.
        return self.network_from_embeddings([mixed, keras.ops.maximum(ids, _next_row(ids))], training=training)

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
        teacher_logits = self.teacher_logits(x)
        loss = (1.0 - self.alpha) * self._distillation(teacher_logits, logits)
        if y is not None and self.alpha > 0.0:
            loss = self.alpha * _labelled_cross_entropy(y, logits) + loss
        if isinstance(y_pred, dict) and "projected" in y_pred:
            loss = loss + self.vector_weight * _cosine_distance(y_pred["projected"], x["teacher_vectors"])
        if isinstance(y_pred, dict) and "mixed_logits" in y_pred:
            mixed = self._distillation(teacher_logits, y_pred["mixed_logits"], mix=y_pred["mix"])
            loss = loss + self.mixup_weight * mixed
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is None:
            return self.get_metrics_result()
        # Unlabelled rows (-1) must not count as wrong answers.
        labelled = keras.ops.cast(keras.ops.greater_equal(y, 0), "float32")
        return super().compute_metrics(x, keras.ops.maximum(y, 0), _logits(y_pred), sample_weight=labelled)

    def _distillation(self, teacher_logits, student_logits, mix=None):
        """With `mix`, the student's output on mixed rows against the same mix of each row's target and
        the next row's: of their logits for MSE, of their softened distributions for KL."""
        def mixed(targets):
            if mix is None:
                return targets
            weights = keras.ops.reshape(keras.ops.cast(mix, "float32"), (-1, 1))
            return weights * targets + (1.0 - weights) * _next_row(targets)

        if self.distillation_loss == "mse":
            per_row = keras.ops.mean(keras.ops.square(student_logits - mixed(teacher_logits)), axis=-1)
            return _global_mean(per_row)
        t = self.temperature
        teacher_probs = mixed(keras.ops.softmax(teacher_logits / t, axis=-1))
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
            mixup_weight=self.mixup_weight,
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


def _next_row(x):
    """Each row's partner in the mix: the next row of the batch (batches come shuffled), the last
    row's the first."""
    return keras.ops.roll(x, -1, axis=0)


def _cosine_distance(projected, vectors):
    """Mean of 1 - cosine similarity: the direction of the teacher's vector, whatever its length."""
    negated_cosine = keras.losses.cosine_similarity(keras.ops.cast(vectors, "float32"),
                                                    keras.ops.cast(projected, "float32"))
    return _global_mean(1.0 + negated_cosine)


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
