"""The graphs that get converted: text in or token ids in, probabilities out.

Both wrap the Keras student's own id-level network (`student.classifier`), so
the weights and the maths are the student's. What differs from the Keras model
is only how the WordPiece ids reach it, and that is exact, not approximate:

The student tokenizes with the teacher's full 30,522-piece vocabulary and then
maps the pieces it kept to its embedding rows (the rest to `[UNK]`) through a
30,522-entry lookup table. The export instead orders the same vocabulary with
the kept pieces first, in embedding-row order (`ExportVocabulary`). WordPiece's
greedy longest match depends only on the set of pieces, so every word splits
exactly as before, a kept piece's id *is* its embedding row, and the table
becomes one comparison: ids `>= kept` are `[UNK]`. The pieces cannot be dropped
instead: removing a piece changes how the words that contain it split.

The MediaPipe model (`BertInputsModule`) takes what MediaPipe's and the Task
Library's BERT clients send: `[CLS]`, the pieces, `[SEP]`, zero padding, as ids
into that same vocabulary, with a mask and segment ids. Dropping the markers is
exact too: a text never yields the `[SEP]` piece itself, because the tokenizer
splits `[` and `]` off as punctuation.

The token-ids model takes ids into that same ordered vocabulary (the first
`kept` lines of its `vocab.txt` are the student's pieces), so any standard BERT
uncased WordPiece tokenizer fed that file produces valid input, and the model
does the `[UNK]` mapping itself.

Example:

```python
vocabulary = ExportVocabulary.of(student)
WordpieceIds(vocabulary.pieces, 64)(["A gripping film"])  # ids into vocabulary.pieces, 0-padded
module = TextModule(student)          # module.serve(tf.constant(["a gripping film"]))
bert_inputs(ids, vocabulary.pieces)   # [CLS] ids [SEP] 0..., its mask and segment ids, as MediaPipe sends them
```
"""

import dataclasses

import numpy as np
import tensorflow as tf

from kdistill.tokenizer import PAD, UNK, StudentTokenizer, bert_single_segment

TEXT_INPUT = "texts"
IDS_INPUT = "token_ids"
OUTPUT = "probabilities"
# MediaPipe's and the Task Library's BERT clients find their three inputs by these names.
BERT_INPUTS = ("ids", "mask", "segment_ids")
CLS = "[CLS]"
SEP = "[SEP]"


@dataclasses.dataclass
class ExportVocabulary:
    """The teacher's vocabulary, the student's kept pieces first.

    `pieces[:kept]` are the student's embedding rows in order; `pieces[kept:]` are
    the teacher's other pieces, which only steer the WordPiece split and become `[UNK]`.
    """

    pieces: list
    kept: int
    unk_id: int

    @classmethod
    def of(cls, student):
        tokenizer = student.tokenizer
        kept = tokenizer.student_vocabulary()
        kept_set = set(kept)
        pieces = kept + [p for p in tokenizer.vocabulary if p not in kept_set]
        if pieces[0] != PAD or len(set(pieces)) != len(pieces):
            # Padding id 0 and unique pieces are what make the reordering exact.
            raise ValueError("the student's vocabulary must start with [PAD] and have no duplicate pieces")
        return cls(pieces=pieces, kept=len(kept), unk_id=kept.index(UNK))

    def clamp(self, ids):
        """Ids into `pieces` -> student embedding rows (pieces the student dropped -> `[UNK]`)."""
        if self.kept == len(self.pieces):
            return ids
        in_student = tf.logical_and(ids >= 0, ids < self.kept)
        return tf.where(in_student, ids, tf.constant(self.unk_id, ids.dtype))


class WordpieceIds:
    """Strings -> `(batch, sequence_length)` int32 ids into `vocabulary`, 0-padded and truncated.

    The student's own tokenizer (`kdistill.tokenizer.StudentTokenizer`, the same TF Text
    ops) over `vocabulary`, without a remap: ids are line numbers of `vocabulary`.
    Runs eagerly on the host (token-ids models) or inside the exported graph.
    """

    def __init__(self, vocabulary, sequence_length, lowercase=True):
        self.sequence_length = int(sequence_length)
        self._tokenizer = StudentTokenizer(list(vocabulary), self.sequence_length, lowercase=lowercase)

    def __call__(self, texts):
        # The layer's own `call`: inside a traced graph there is no Keras bookkeeping to do.
        return self._tokenizer.call(tf.convert_to_tensor(texts, dtype=tf.string))

    def numpy(self, texts):
        texts = np.asarray(list(texts), dtype=object)
        if not len(texts):
            return np.zeros((0, self.sequence_length), np.int32)
        return self(texts).numpy()


class _StudentModule(tf.Module):
    def __init__(self, student):
        super().__init__()
        self.classifier = student.classifier
        self.vocabulary = ExportVocabulary.of(student)
        self.sequence_length = student.tokenizer.sequence_length
        self.lowercase = student.tokenizer.lowercase
        # tf.Module does not see a Keras 3 model's variables; without this list the
        # converter cannot freeze them and silently writes a model that outputs NaN.
        self.student_variables = [v.value for v in student.classifier.variables]

    def _probabilities(self, ids):
        logits = self.classifier(self.vocabulary.clamp(ids), training=False)
        return {OUTPUT: tf.nn.softmax(logits, axis=-1)}


class TextModule(_StudentModule):
    """A batch of UTF-8 strings in, class probabilities out; the tokenizer is in the graph."""

    def __init__(self, student):
        super().__init__(student)
        self.tokenize = WordpieceIds(self.vocabulary.pieces, self.sequence_length, self.lowercase)
        self.serve = tf.function(self._serve, input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)])

    def _serve(self, texts):
        return self._probabilities(self.tokenize(texts))


class TokenIdsModule(_StudentModule):
    """`(batch, sequence_length)` int32 ids into `ExportVocabulary.pieces` in, probabilities out.

    With `any_length`, ids of any length up to `sequence_length`: the student pools over the real pieces only, so
    a batch cut to its longest text gives the same probabilities for a fraction of the work (`export.bulk`).
    """

    def __init__(self, student, any_length=False):
        super().__init__(student)
        spec = tf.TensorSpec([None, None if any_length else self.sequence_length], tf.int32, name=IDS_INPUT)
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, token_ids):
        return self._probabilities(token_ids)


class BertInputsModule(_StudentModule):
    """MediaPipe Tasks / Task Library BERT inputs in, probabilities out.

    Three `(1, sequence_length + 2)` int32 inputs named as `BERT_INPUTS`:
    `[CLS]` + WordPiece ids into `ExportVocabulary.pieces` + `[SEP]`, 0-padded;
    the mask; the segment ids. The graph turns them back into the student's ids.
    """

    def __init__(self, student):
        super().__init__(student)
        self.sep_id = self.vocabulary.pieces.index(SEP)
        specs = [tf.TensorSpec([1, self.sequence_length + 2], tf.int32, name=name) for name in BERT_INPUTS]
        self.serve = tf.function(self._serve, input_signature=specs)

    def _serve(self, ids, mask, segment_ids):
        # Only the first segment's real tokens are text; the student never saw the markers.
        ids = tf.where(tf.logical_and(mask > 0, tf.equal(segment_ids, 0)), ids, 0)
        pieces = ids[:, 1 : 1 + self.sequence_length]
        pieces = tf.where(tf.equal(pieces, self.sep_id), 0, pieces)
        return self._probabilities(pieces)


class MediaPipeWordpieceIds:
    """Strings -> `(batch, sequence_length)` ids, tokenized as MediaPipe's BERT client does on the phone.

    MediaPipe's BertPreprocessorCalculator lower-cases ASCII letters only (no
    accent stripping, no Unicode normalisation), splits with TF Text's
    `RegexSplit` on whitespace, punctuation and CJK ideographs, and runs TF Text's
    `WordpieceTokenize` over the packed vocabulary
    (mediapipe/tasks/cc/text/tokenizers/bert_tokenizer.h). The same TF Text
    functions, with the same patterns and limits, reproduce it here, so LiteRT can
    be fed exactly what the phone feeds the model. It differs from `WordpieceIds`
    only on text where case-folding beyond ASCII or accent stripping matters.
    """

    # bert_tokenizer.h's kDefaultDelimRe / kDefaultIncludeDelimRe.
    _CJK = (r"[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]"
            r"|[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]")
    KEEP_DELIMITERS = r"([!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]|" + _CJK + ")"
    DELIMITERS = r"(\s+|[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]|" + _CJK + ")"

    def __init__(self, vocabulary, sequence_length):
        import tensorflow_text as tf_text

        self.sequence_length = int(sequence_length)
        self._tf_text = tf_text
        ids = tf.range(len(vocabulary), dtype=tf.int64)
        table = tf.lookup.StaticVocabularyTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(list(vocabulary)), ids), num_oov_buckets=1
        )
        self._wordpiece = tf_text.WordpieceTokenizer(
            table, suffix_indicator="##", max_bytes_per_word=100, token_out_type=tf.int64, unknown_token=UNK
        )

    def numpy(self, texts):
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.sequence_length), np.int32)
        lowered = tf.strings.lower(tf.constant(texts, tf.string), encoding="")  # "" = ASCII only
        words = self._tf_text.regex_split(lowered, self.DELIMITERS, self.KEEP_DELIMITERS)
        ids = self._wordpiece.tokenize(words).merge_dims(-2, -1)
        return ids.to_tensor(default_value=0, shape=[None, self.sequence_length]).numpy().astype(np.int32)


def bert_inputs(ids, pieces):
    """Student-length ids (`WordpieceIds` over `pieces`) -> the three MediaPipe inputs.

    What the client builds: `[CLS]` + the pieces + `[SEP]`, zero-padded to length + 2,
    mask 1 on those tokens, segment ids 0. Returns int32 arrays `(ids, mask, segment_ids)`.
    """
    return bert_single_segment(ids, pieces.index(CLS), pieces.index(SEP))
