"""The student's tokenizer: raw strings to fixed-length WordPiece ids, inside the graph.

It uses TF Text's `FastBertNormalizer` and `FastWordpieceTokenizer`, the ops
LiteRT runs as custom ops, so the exported phone model takes text directly.

The vocabulary is the teacher's WordPiece vocabulary, so the student splits
words exactly as the teacher does. `prune_vocabulary` keeps only the pieces the
task's own text uses most: the embedding table, the bulk of the student's
parameters, shrinks about 4x while the rare pieces fall back to `[UNK]`.

Example:

```python
tokenizer = StudentTokenizer(["[PAD]", "[UNK]", "the", "film", "##s"], sequence_length=8)
tokenizer(["The films"])  # [[2, 3, 4, 0, 0, 0, 0, 0]]
```
"""

import keras
import numpy as np

PAD = "[PAD]"
UNK = "[UNK]"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@keras.saving.register_keras_serializable(package="kdistill")
class StudentTokenizer(keras.layers.Layer):
    """Strings -> int32 ids of shape `(batch, sequence_length)`, 0-padded.

    Args:
        vocabulary: the WordPiece vocabulary (list of pieces, `[PAD]` first).
        sequence_length: ids are truncated or padded to this length.
        kept_ids: optional ids into `vocabulary` that the student keeps, in the
            order of its embedding rows; other pieces become `[UNK]`.
        lowercase: lower-case and strip accents before splitting (uncased BERT).
    """

    def __init__(self, vocabulary, sequence_length=64, kept_ids=None, lowercase=True, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.vocabulary = list(vocabulary)
        self.sequence_length = int(sequence_length)
        self.kept_ids = None if kept_ids is None else [int(i) for i in kept_ids]
        self.lowercase = bool(lowercase)
        if self.vocabulary[0] != PAD or UNK not in self.vocabulary:
            raise ValueError(f"the vocabulary must start with {PAD} and contain {UNK}")
        self._remap = _remap_table(len(self.vocabulary), self.kept_ids, self.vocabulary.index(UNK))
        self._normalizer = None
        self._wordpiece = None

    @property
    def vocabulary_size(self):
        return len(self.vocabulary) if self.kept_ids is None else len(self.kept_ids)

    def student_vocabulary(self):
        """The pieces in the order of the student's embedding rows."""
        if self.kept_ids is None:
            return list(self.vocabulary)
        return [self.vocabulary[i] for i in self.kept_ids]

    def _ops(self):
        # Built lazily: TF Text compiles the vocabulary into a model buffer, which is not
        # needed until the first call.
        if self._wordpiece is None:
            import tensorflow as tf
            import tensorflow_text as tf_text

            # init_scope: the ops' constants must outlive whatever graph is being traced now.
            with tf.init_scope():
                self._build_ops(tf_text)
        return self._normalizer, self._wordpiece

    def _build_ops(self, tf_text):
        self._normalizer = tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=self.lowercase)
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary,
            token_out_type="int32",
            unknown_token=UNK,
            no_pretokenization=False,
            support_detokenization=False,
        )

    def full_ids(self, texts):
        """Ragged ids into the full vocabulary, before truncation and pruning."""
        import tensorflow as tf

        normalizer, wordpiece = self._ops()
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        return wordpiece.tokenize(normalizer.normalize(texts))

    def count_truncated(self, texts, batch_size=4096):
        """How many of `texts` have more pieces than `sequence_length`, so lose their end."""
        texts = np.asarray(texts, dtype=object)
        return int(sum(
            np.sum(self.full_ids(texts[i : i + batch_size]).row_lengths().numpy() > self.sequence_length)
            for i in range(0, len(texts), batch_size)
        ))

    def __call__(self, texts, *args, **kwargs):
        # Like keras-hub's tokenizers, accept plain Python lists of strings.
        if isinstance(texts, (list, tuple, str)):
            import tensorflow as tf

            texts = tf.constant(texts, dtype=tf.string)
        return super().__call__(texts, *args, **kwargs)

    def call(self, texts):
        import tensorflow as tf

        # to_tensor with a fixed shape both pads and truncates; slicing the ragged ids
        # first would lower to RaggedRange, which LiteRT has no kernel for.
        ids = self.full_ids(texts).to_tensor(default_value=0, shape=[None, self.sequence_length])
        if self._remap is not None:
            ids = tf.gather(tf.constant(self._remap), ids)
        return ids

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.sequence_length,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary=self.vocabulary,
            sequence_length=self.sequence_length,
            kept_ids=self.kept_ids,
            lowercase=self.lowercase,
        )
        return config


def trim_padding(token_ids):
    """A batch of 0-padded ids (a NumPy array, or a tensor in a `tf.data` pipeline) without the padding columns that
    every row has.

    The student's logits do not change: its convolutions pad "same" with zeros, as the zeroed embeddings of
    padding are, and its poolings skip padding (`student.conv_classifier`). On SST-2's pool a shuffled batch of
    128 texts is about 46 of the 64 pieces wide, and distillation ran 1.2-1.4x as fast on a CPU for it. (`export.bulk`
    cuts its length-sorted batches by the lengths it sorted on, without counting again.)
    """
    longest = keras.ops.max(keras.ops.count_nonzero(token_ids, axis=1), initial=0)  # a NumPy array or a tensor
    return token_ids[:, : keras.ops.maximum(longest, 1)]


def bert_single_segment(ids, cls_id, sep_id):
    """0-padded piece ids `(rows, length)` -> BERT's single-segment inputs, two places longer: `[CLS]` + the
    pieces + `[SEP]` zero-padded, the mask of those tokens, and segment ids 0 (int32 arrays)."""
    ids = np.asarray(ids, np.int32)
    rows, length = ids.shape
    lengths = np.sum(ids != 0, axis=1)  # id 0 is [PAD], never a piece
    out = np.zeros((rows, length + 2), np.int32)
    out[:, 0] = cls_id
    out[:, 1 : 1 + length] = ids
    out[np.arange(rows), 1 + lengths] = sep_id
    mask = (np.arange(length + 2)[None, :] < (lengths + 2)[:, None]).astype(np.int32)
    return out, mask, np.zeros_like(out)


def _remap_table(full_size, kept_ids, unk_id):
    """Full-vocabulary id -> student id; dropped pieces go to the student's `[UNK]`."""
    if kept_ids is None:
        return None
    table = np.full(full_size, kept_ids.index(unk_id), dtype=np.int32)
    table[np.asarray(kept_ids)] = np.arange(len(kept_ids), dtype=np.int32)
    return table


def prune_vocabulary(vocabulary, texts, size, lowercase=True, batch_size=4096):
    """Ids of the special tokens plus the `size` pieces most frequent in `texts`.

    Pieces are ordered by frequency, so the result is stable for a given corpus.
    """
    texts = np.asarray(texts, dtype=object)
    batches = (texts[start : start + batch_size] for start in range(0, len(texts), batch_size))
    return kept_ids_from_counts(vocabulary, PieceCounter(vocabulary, lowercase).add_all(batches).counts, size)


class PieceCounter:
    """Counts WordPiece pieces batch by batch, so a corpus too big for memory can be pruned for.

    It also counts the texts longer than `sequence_length` pieces (which the student cuts short).

    Example:

    ```python
    counter = PieceCounter(vocabulary, sequence_length=64).add_all(batches_of_texts)
    kept_ids = kept_ids_from_counts(vocabulary, counter.counts, 7000)
    ```
    """

    def __init__(self, vocabulary, lowercase=True, sequence_length=None):
        self.tokenizer = StudentTokenizer(vocabulary, lowercase=lowercase)
        self.counts = np.zeros(len(vocabulary), dtype=np.int64)
        self.sequence_length = sequence_length
        self.texts = 0
        self.truncated = 0

    def add(self, texts):
        ids = self.tokenizer.full_ids(texts)
        self.counts += np.bincount(ids.flat_values.numpy(), minlength=len(self.counts))
        lengths = ids.row_lengths().numpy()
        self.texts += len(lengths)
        if self.sequence_length is not None:
            self.truncated += int(np.sum(lengths > self.sequence_length))
        return self

    def add_all(self, batches):
        for texts in batches:
            self.add(texts)
        return self


def kept_ids_from_counts(vocabulary, counts, size):
    """The special tokens plus the `size` pieces with the highest `counts`, most frequent first."""
    counts = np.array(counts, dtype=np.int64)
    special = [vocabulary.index(t) for t in SPECIAL_TOKENS if t in vocabulary]
    counts[special] = -1
    by_frequency = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    return special + by_frequency[: max(size - len(special), 0)]


def read_vocabulary(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]
