"""SetFit's first stage (Tunstall et al. 2022): contrastive fine-tuning of the teacher's sentence encoder.

Pairs of labelled texts are drawn, each text with others of its class (target
cosine 1) and of other classes (target 0), and the encoder (the BERT backbone and
the teacher's mean pooling) learns to place their sentence vectors accordingly:
the squared error between the pair's cosine and its target, SetFit's
`CosineSimilarityLoss`. The classifier's usual fine-tuning follows
(`pipeline.train_teacher`, `--teacher_contrastive_pairs`).

Example:

```python
teacher = teacher_lib.build("minilm", num_classes=2)
fine_tune_encoder(teacher, texts, labels, pairs_per_text=4)
teacher_lib.fine_tune(teacher, texts, labels)
```
"""

import warnings

import keras
import numpy as np

from kdistill import io, progress, teacher as teacher_lib
from kdistill.errors import KdistillError

def pairs(labels, pairs_per_text, seed=0):
    """`(first, second, target)` index arrays: for every text, `pairs_per_text / 2` partners of its class
    (target 1) and as many of other classes (target 0), drawn as SetFit draws them."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    same_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    other_class = {c: np.flatnonzero(labels != c) for c in same_class}
    first, second, target = [], [], []
    for _ in range(max(pairs_per_text // 2, 1)):
        for i, label in enumerate(labels):
            same = same_class[label]
            for partners, similar in ((same[same != i], 1.0), (other_class[label], 0.0)):
                if len(partners):
                    first.append(i)
                    second.append(rng.choice(partners))
                    target.append(similar)
    order = rng.permutation(len(first))
    return np.asarray(first)[order], np.asarray(second)[order], np.asarray(target, np.float32)[order]


@keras.saving.register_keras_serializable(package="kdistill")
class PairCosine(keras.layers.Layer):
    """Cosine similarity of two batches of sentence vectors, row by row."""

    def call(self, first, second):
        return -keras.losses.cosine_similarity(first, second)  # Keras' loss is the negated cosine


def pair_model(teacher):
    """Two texts' token features -> the cosine of their sentence vectors, through `teacher`'s own layers."""
    if not hasattr(teacher, "mean_pooling"):
        raise KdistillError("the contrastive stage trains the mean-pooled sentence vector; use --teacher_pooling=mean")
    backbone = teacher.backbone

    def encode(side):
        inputs = {key: keras.Input(shape=(None,), dtype="int32", name=f"{side}_{key}")
                  for key in teacher_lib.batch_signature()}
        return inputs, teacher.mean_pooling(backbone(inputs)["sequence_output"], inputs["padding_mask"])

    first_inputs, first = encode("first")
    second_inputs, second = encode("second")
    return keras.Model([first_inputs, second_inputs], PairCosine(name="cosine")(first, second), name="pair_cosine")


def fine_tune_encoder(teacher, texts, labels, pairs_per_text=4, batch_size=16, learning_rate=2e-5, seed=0,
                      verbose="auto"):
    """One epoch of SetFit's contrastive loss over `pairs(labels, pairs_per_text)`; updates `teacher`'s backbone.

    SetFit's defaults are 40 pairs per text (20 iterations), batch 16 and 2e-5; on two CPU cores
    a pair step of 16 costs about a second, so 4 pairs per text of N=1000 take about 4 minutes.
    """
    import tensorflow as tf

    side = teacher_lib.batch_signature()  # one text's token features, as the teacher's own batches carry them
    features = teacher_lib.tokenize(teacher, texts)
    lengths = features["padding_mask"].sum(axis=1)
    first, second, target = pairs(labels, pairs_per_text, seed)
    steps = -(-len(target) // batch_size)

    def batches():
        for start in range(0, len(target), batch_size):
            sides = (first[start:start + batch_size], second[start:start + batch_size])
            # One width for both sides, a power of two: each new shape retraces the training step (seconds
            # for a BERT), and a batch of 32 random texts is about as long as its longest anyway.
            longest = max(lengths[rows].max() for rows in sides)
            width = min(int(2 ** np.ceil(np.log2(max(longest, 8)))), features["token_ids"].shape[1])
            yield tuple({key: features[key][rows, :width] for key in side} for rows in sides), \
                target[start:start + batch_size]

    dataset = io.epoch_dataset(batches, ((side, side), tf.TensorSpec(shape=(None,), dtype=tf.float32)),
                               num_batches=steps)
    model = pair_model(teacher)
    schedule = teacher_lib.WarmupLinearDecay(learning_rate, steps, int(steps * 0.1))
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01), loss="mean_squared_error")
    keras.utils.set_random_seed(seed)
    with warnings.catch_warnings():
        # The backbone's [CLS] pooler is not part of the sentence vector, and Keras says so every step.
        warnings.filterwarnings("ignore", message="Gradients do not exist for variables .*pooled_dense")
        model.fit(dataset, epochs=1, verbose=progress.keras_verbose(verbose), shuffle=False)
    return model.history.history["loss"][-1]
