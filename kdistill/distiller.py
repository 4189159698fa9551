"""`Distiller`: a `keras.Model` that trains the student against a frozen teacher.

loss = alpha * cross-entropy(labels, student)                  on the rows that carry a label
     + (1 - alpha) * T^2 * KL(teacher_T || student_T)           on every row

where `_T` is the softmax at temperature T (Hinton et al. 2015; the T^2 keeps the
two terms' gradients in balance whatever T is). Chia et al. (2018) distil with
the mean squared error between logits; it measured 0.40 points below the KL on
SST-2 (docs/IDEAS.md), so the KL is the one loss here.

Inputs are raw strings, or a dict `{"text": strings, "teacher_logits": floats}`
when the teacher's logits were computed ahead (the normal case: the teacher is
the expensive part). With every batch carrying them the teacher may be `None`.
A dict may carry the student's `"token_ids"` instead of (or beside) the text,
tokenised in the input pipeline: string ops then stay on the host, which TPUs
need; the student may then be its bare id-level network
(`student.conv_classifier`). Compiled with `batch_parts` above 1 (`training.batch_parts`: on a CPU), it sorts a
batch's rows by length and convolves them in that many equal slices, each cut to its longest text: the same logits
and loss for fewer positions. Labels are class ids, with -1 for unlabelled rows.
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

# SST-2, N=1000 (dev accuracy, 4 epochs): alpha 0.5 -> 77.0%, 0.1 -> 79.6%, 0.0 -> 79.1%. With ~2
# labelled rows per batch a heavier label term overfits those rows.
DEFAULT_ALPHA = 0.1
DEFAULT_TEMPERATURE = 2.0
# Where classes are many (`config.MANY_CLASSES`): CLINC150's 150 intents, validation rows, +2.27 points over 2.
MANY_CLASSES_TEMPERATURE = 1.0


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
        self.alpha = DEFAULT_ALPHA
        self.temperature = DEFAULT_TEMPERATURE
        self.batch_parts = 1
        self.built = True  # teacher and student come built; the distiller adds no weights

    def compile(
        self,
        optimizer="adam",
        metrics=None,
        alpha=DEFAULT_ALPHA,
        temperature=DEFAULT_TEMPERATURE,
        batch_parts=1,
        jit_compile=False,  # string ops (tokenisers) cannot run under XLA
        **kwargs,
    ):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if int(batch_parts) < 1:
            raise ValueError(f"batch_parts must be at least 1, got {batch_parts}")
        # Keras applies sample weights only to `weighted_metrics`; compute_metrics weighs
        # unlabelled rows by zero, so the metrics must go there to score labelled rows only.
        if metrics is not None:
            kwargs["weighted_metrics"] = list(metrics) + list(kwargs.get("weighted_metrics") or [])
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.batch_parts = int(batch_parts)

    def call(self, inputs, training=False):
        ids = inputs.get("token_ids") if isinstance(inputs, dict) else None
        if ids is not None and self.batch_parts > 1:
            return self._by_parts(ids, training)
        if ids is not None:
            return self.network(ids, training=training)
        return self.student(_texts(inputs), training=training)

    def _by_parts(self, ids, training):
        """The network's logits of `ids`, its rows sorted by length and convolved in `batch_parts` equal slices,
        each cut to its longest text, then put back in order: every row's logits are the same as in one call,
        since padding changes nothing (`student.conv_classifier`), and a CPU convolves fewer positions.

        A batch of fewer rows than parts repeats its longest row to give every part one (a convolution of no rows
        fails), and the repeats' logits are dropped, so they add nothing to the loss.
        """
        rows = keras.ops.shape(ids)[0]
        lengths = keras.ops.count_nonzero(ids, axis=1)
        by_length = keras.ops.argsort(lengths)
        ends = part_ends(rows, self.batch_parts)
        slots = keras.ops.take(by_length, keras.ops.minimum(keras.ops.arange(ends[-1]), rows - 1))
        ids, lengths = keras.ops.take(ids, slots, axis=0), keras.ops.take(lengths, slots)
        widths = keras.ops.cast(keras.ops.maximum(keras.ops.take(lengths, ends - 1), 1), "int32")
        logits = []
        for k in range(self.batch_parts):
            start = ends[k - 1] if k else 0
            part = keras.ops.slice(ids, (start, 0), (ends[k] - start, widths[k]))
            logits.append(self.network(part, training=training))
        return keras.ops.take(keras.ops.concatenate(logits, axis=0)[:rows], keras.ops.argsort(by_length), axis=0)

    def teacher_logits(self, inputs):
        """Precomputed logits when the batch carries them, else the frozen teacher's output."""
        if isinstance(inputs, dict) and "teacher_logits" in inputs:
            return keras.ops.cast(inputs["teacher_logits"], "float32")
        if self.teacher is None:
            raise ValueError("a distiller without a teacher needs batches that carry 'teacher_logits'")
        texts = _texts(inputs)
        return keras.ops.stop_gradient(self.teacher(self.teacher.preprocessor(texts), training=False))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = (1.0 - self.alpha) * self._distillation(self.teacher_logits(x), y_pred)
        if y is not None and self.alpha > 0.0:
            loss = self.alpha * _labelled_cross_entropy(y, y_pred) + loss
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is None:
            return self.get_metrics_result()
        # Unlabelled rows (-1) must not count as wrong answers.
        labelled = keras.ops.cast(keras.ops.greater_equal(y, 0), "float32")
        return super().compute_metrics(x, keras.ops.maximum(y, 0), y_pred, sample_weight=labelled)

    def _distillation(self, teacher_logits, student_logits):
        t = self.temperature
        # Per row, not Keras' mean: under a strategy Keras' reduction divides by the replica
        # count, which assumes equal replica batches; _global_mean divides by the true total.
        kl = keras.losses.KLDivergence(reduction=None)
        teacher_probs = keras.ops.softmax(teacher_logits / t, axis=-1)
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
        config.update(alpha=self.alpha, temperature=self.temperature, batch_parts=self.batch_parts)
        return config

    def compile_from_config(self, config):
        if not config:
            return
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)


def part_ends(rows, parts):
    """Where each of `parts` equal slices of a batch of `rows` rows ends (exclusive), counting at least one row a
    part: a batch of fewer rows than parts repeats its last (`Distiller._by_parts`)."""
    slots = keras.ops.maximum(rows, parts)
    return (keras.ops.arange(1, parts + 1) * slots) // parts


def _texts(inputs):
    return inputs["text"] if isinstance(inputs, dict) else inputs


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
