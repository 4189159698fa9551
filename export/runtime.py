"""Running an exported `.tflite` student with LiteRT (`ai_edge_litert`), as an app would.

Text-in models hold TF Text's normaliser, WordPiece and ragged-to-dense ops,
which have no builtin kernels, so the interpreter is given TF Text's LiteRT
kernels for them. Token-ids models need none; their texts are tokenised here,
on the host, from the vocabulary stored in the model, exactly as an app must
(see `export.graph.WordpieceIds`).

Each text is one call with a batch of one on one thread: the way a phone runs
it, and what the latencies in the export report measure.

Example:

```python
classifier = TFLiteClassifier("runs/demo/student/student_int8.tflite")
classifier.class_names                                # ["negative", "positive"]
classifier.predict_proba(["a gripping, funny film"])  # [[0.03, 0.97]]
```
"""

import os

import numpy as np

from export import graph, metadata
from kdistill.errors import KdistillError

SIGNATURE_KEY = "serving_default"
# TF Text's LiteRT kernels for the tokenizer's ops (tensorflow_text.core.pybinds.tflite_registrar).
CUSTOM_OP_REGISTERERS = ("AddFastBertNormalize", "AddFastWordpieceTokenize", "AddRaggedTensorToTensor")


def custom_op_registerers():
    from tensorflow_text.core.pybinds import tflite_registrar

    # The pybind functions themselves; their names as strings fail, as LiteRT looks
    # them up in its own library, where TF Text's symbols are absent.
    return [getattr(tflite_registrar, name) for name in CUSTOM_OP_REGISTERERS]


class TFLiteClassifier:
    """An exported student (text-in or token-ids) behind `predict_proba(texts)`.

    Attributes:
        metadata: the model's stored `kdistill.json` (see `export.metadata`).
        input_kind: "text" or "token_ids".
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
        if len(inputs) != 1:
            raise KdistillError(f"{path}: a model with inputs {sorted(inputs)}; expected one (texts or token ids)")
        self._input, details = next(iter(inputs.items()))
        self.input_kind = "text" if details["dtype"] == np.bytes_ else "token_ids"
        outputs = self._run.get_output_details()
        self._output = self.metadata.get("output_name") or next(iter(outputs))
        out = outputs[self._output]
        self.num_classes = int(out["shape"][-1])
        scale, zero_point = out["quantization"]
        # Integer outputs (int8 mode) are probabilities in steps of `scale`.
        self._dequantize = (float(scale), int(zero_point)) if np.issubdtype(out["dtype"], np.integer) else None
        self.class_names = self.metadata.get("class_names") or [str(i) for i in range(self.num_classes)]
        self._tokenize = None
        if self.input_kind == "token_ids":
            vocabulary = metadata.read_vocabulary(path) or _vocabulary_beside(path)
            self._tokenize = graph.WordpieceIds(
                vocabulary, int(details["shape_signature"][-1]), self.metadata.get("lowercase", True)
            )

    def token_ids(self, texts):
        """What the app feeds a token-ids model: `(len(texts), sequence_length)` int32 ids."""
        if self._tokenize is None:
            raise ValueError(f"{self.path} takes text; it tokenizes in the graph")
        return self._tokenize.numpy(texts)

    def predict_proba(self, texts):
        """Class probabilities, shape `(len(texts), num_classes)`.

        One text per call, as an app makes them.
        """
        texts = list(texts)
        if self.input_kind == "text":
            inputs = [np.array([t.encode("utf-8") if isinstance(t, str) else t], dtype=object) for t in texts]
        else:
            inputs = list(self.token_ids(texts)[:, None, :])
        rows = []
        for batch in inputs:
            rows.append(self._run(**{self._input: batch})[self._output][0])
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
