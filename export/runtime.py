"""Running an exported `.tflite` student as an app would: with LiteRT (`ai_edge_litert`), or with MediaPipe.

Text-in models hold TF Text's normaliser, WordPiece and ragged-to-dense ops,
which have no builtin kernels, so the interpreter is given TF Text's LiteRT
kernels for them. Token-ids and MediaPipe models need none; for LiteRT their
texts are tokenised here, on the host, over the vocabulary packed in the model:
as the student does for token-ids models (`export.graph.WordpieceIds`), as
MediaPipe's client does for MediaPipe models (`export.graph.MediaPipeWordpieceIds`).

`MediaPipeClassifier` runs a MediaPipe model through MediaPipe Tasks'
`TextClassifier`, the C++ task graph that Android's `tasks-text` library runs:
its own tokenizer, its own reading of the model's metadata.

Each text is one call with a batch of one on one thread: the way a phone runs
it, and what the latencies in the export report measure.

Example:

```python
classifier = TFLiteClassifier("runs/demo/student/student_int8.tflite")
classifier.class_names                                # ["negative", "positive"]
classifier.predict_proba(["a gripping, funny film"])  # [[0.03, 0.97]]
MediaPipeClassifier("runs/demo/student/student_dynamic_mediapipe.tflite").predict_proba(["a gripping, funny film"])
```
"""

import os

import numpy as np

from kdistill.errors import KdistillError
from kdistill.export import graph, metadata

SIGNATURE_KEY = "serving_default"
# TF Text's LiteRT kernels for the tokenizer's ops (tensorflow_text.core.pybinds.tflite_registrar).
CUSTOM_OP_REGISTERERS = ("AddFastBertNormalize", "AddFastWordpieceTokenize", "AddRaggedTensorToTensor")


def input_name(tensor_name):
    """A converted model's input tensor name -> its signature input name ("serving_default_ids:0" -> "ids")."""
    return tensor_name.split(":")[0].removeprefix(SIGNATURE_KEY + "_")


def custom_op_registerers():
    from tensorflow_text.core.pybinds import tflite_registrar

    # The pybind functions themselves; their names as strings fail, as LiteRT looks
    # them up in its own library, where TF Text's symbols are absent.
    return [getattr(tflite_registrar, name) for name in CUSTOM_OP_REGISTERERS]


class TFLiteClassifier:
    """An exported student (text-in or token-ids) behind `predict_proba(texts)`.

    Attributes:
        metadata: the model's stored `kdistill.json` (see `export.metadata`).
        input_kind: "text", "token_ids" or "mediapipe".
        class_names: label names, in output order.
    """

    def __init__(self, path, num_threads=1):
        from ai_edge_litert.interpreter import InterpreterWithCustomOps

        if not os.path.isfile(path):
            raise KdistillError(f"{path}: no .tflite model here; export one first or fix the path")
        self.path = path
        try:
            self.metadata = metadata.read_metadata(path)
            self.interpreter = InterpreterWithCustomOps(
                model_path=path, custom_op_registerers=custom_op_registerers(), num_threads=num_threads
            )
            self._run = self.interpreter.get_signature_runner(self.metadata.get("signature", SIGNATURE_KEY))
        except KdistillError:
            raise
        except Exception as e:  # flatbuffers and LiteRT raise ValueError, RuntimeError, struct.error, ...
            raise KdistillError(
                f"{path}: not a loadable .tflite model ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
                "export it again or restore the file"
            ) from None
        inputs = self._run.get_input_details()
        if sorted(inputs) == sorted(graph.BERT_INPUTS):
            self.input_kind = "mediapipe"
            details = inputs[graph.BERT_INPUTS[0]]
        elif len(inputs) == 1:
            self._input, details = next(iter(inputs.items()))
            self.input_kind = "text" if details["dtype"] == np.bytes_ else "token_ids"
        else:
            raise KdistillError(f"{path}: a model with inputs {sorted(inputs)}; expected texts, token ids "
                                f"or {', '.join(graph.BERT_INPUTS)}")
        outputs = self._run.get_output_details()
        self._output = self.metadata.get("output_name") or next(iter(outputs))
        out = outputs[self._output]
        self.num_classes = int(out["shape"][-1])
        scale, zero_point = out["quantization"]
        # Integer outputs (int8 mode) are probabilities in steps of `scale`.
        self._dequantize = (float(scale), int(zero_point)) if np.issubdtype(out["dtype"], np.integer) else None
        self.class_names = self.metadata.get("class_names") or [str(i) for i in range(self.num_classes)]
        self._tokenize = None
        if self.input_kind != "text":
            self._vocabulary = metadata.read_vocabulary(path) or _vocabulary_beside(path)
            # A MediaPipe model's window holds [CLS] and [SEP] besides the pieces.
            length = int(details["shape_signature"][-1]) - (2 if self.input_kind == "mediapipe" else 0)
            if self.input_kind == "mediapipe":
                # Fed what MediaPipe's own tokenizer would send, so LiteRT and the phone see the same ids.
                self._tokenize = graph.MediaPipeWordpieceIds(self._vocabulary, length)
            else:
                self._tokenize = graph.WordpieceIds(self._vocabulary, length, self.metadata.get("lowercase", True))

    def token_ids(self, texts):
        """The app's WordPiece ids for `texts`: `(len(texts), sequence_length)` int32, no [CLS]/[SEP]."""
        if self._tokenize is None:
            raise ValueError(f"{self.path} takes text; it tokenizes in the graph")
        return self._tokenize.numpy(texts)

    def rows(self, texts):
        """One batch-1 input dict per text: what the app passes the model, by input name."""
        texts = list(texts)
        if self.input_kind == "text":
            return [{self._input: np.array([t.encode("utf-8") if isinstance(t, str) else t], dtype=object)}
                    for t in texts]
        ids = self.token_ids(texts)
        if self.input_kind == "token_ids":
            return [{self._input: row[None, :]} for row in ids]
        arrays = graph.bert_inputs(ids, self._vocabulary)
        return [{name: array[i : i + 1] for name, array in zip(graph.BERT_INPUTS, arrays)} for i in range(len(ids))]

    def predict_proba(self, texts):
        """Class probabilities, shape `(len(texts), num_classes)`.

        One text per call, as an app makes them.
        """
        rows = [self._run(**inputs)[self._output][0] for inputs in self.rows(texts)]
        if not rows:
            return np.zeros((0, self.num_classes), np.float32)
        probabilities = np.stack(rows)
        if self._dequantize is not None:
            scale, zero_point = self._dequantize
            probabilities = (probabilities.astype(np.float32) - zero_point) * scale
        return probabilities.astype(np.float32)


def _vocabulary_beside(path):
    # A token-ids model whose metadata was stripped: fall back to the file the export writes beside it.
    vocabulary_path = path + ".vocab.txt"
    if not os.path.isfile(vocabulary_path):
        raise KdistillError(f"{path}: a token-ids model without its vocabulary; put {vocabulary_path} beside it")
    with open(vocabulary_path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


class MediaPipeClassifier:
    """A MediaPipe model (`export_student(kind="mediapipe")`) run by MediaPipe Tasks' `TextClassifier`.

    Everything comes from the model file, as on the phone: the tokenizer from its
    `BertTokenizerOptions` and packed vocabulary, the category names from its label file.

    Attributes:
        class_names: the class names in the model's label file, in output order.
        category_names: the names MediaPipe itself reported, by index (after `predict_proba`).
    """

    def __init__(self, path):
        from mediapipe.tasks.python.core.base_options import BaseOptions
        from mediapipe.tasks.python.text import text_classifier

        if not os.path.isfile(path):
            raise KdistillError(f"{path}: no .tflite model here; export one first or fix the path")
        self.path = path
        options = text_classifier.TextClassifierOptions(base_options=BaseOptions(model_asset_path=path))
        try:
            self._classifier = text_classifier.TextClassifier.create_from_options(options)
        except Exception as e:  # MediaPipe raises RuntimeError/ValueError with its status message
            raise KdistillError(
                f"{path}: MediaPipe's TextClassifier cannot load it ({str(e).splitlines()[0][:200]}); export it "
                "with --target=mediapipe"
            ) from None
        self.class_names = metadata.read_labels(path) or []
        self.num_classes = len(self.class_names)
        self.category_names = None

    def categories(self, text):
        """MediaPipe's categories for one text: [(index, category_name, score)], best first."""
        result = self._classifier.classify(text)
        return [(c.index, c.category_name, c.score) for c in result.classifications[0].categories]

    def predict_proba(self, texts):
        """Class probabilities from MediaPipe's scores, shape `(len(texts), num_classes)`."""
        rows = []
        for text in texts:
            categories = self.categories(text)
            row = np.zeros(max(self.num_classes, len(categories)), np.float32)
            names = [None] * len(row)
            for index, name, score in categories:
                row[index], names[index] = score, name
            self.category_names = self.category_names or names
            rows.append(row)
        return np.stack(rows) if rows else np.zeros((0, self.num_classes), np.float32)

    def close(self):
        self._classifier.close()
