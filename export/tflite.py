"""Export a trained student to a LiteRT (`.tflite`) model that takes raw text.

The tokenizer goes inside the graph: the phone app hands the model a batch of
UTF-8 strings and gets class probabilities back, with no Python or vocabulary
file on the device. TF Text's normaliser, WordPiece and ragged-to-dense ops
have no builtin TFLite kernels, so they are kept as custom ops, and the
interpreter must be given TF Text's kernels for them (`TFLiteClassifier` does).

Example:

```python
from export.tflite import TFLiteClassifier, export_student, parity
from kdistill import cli, io

student = io.load_model("runs/sst2/student.keras", "student")
export_student(student, "runs/sst2/student_dynamic.tflite", mode="dynamic")
classifier = TFLiteClassifier("runs/sst2/student_dynamic.tflite")
classifier.predict_proba(["a gripping, funny film"])  # [[0.03, 0.97]]
parity(student, "runs/sst2/student_dynamic.tflite", ["a gripping, funny film"])
```

From the command line:

```
python -m export.tflite --student_dir=runs/sst2 --mode=dynamic --dataset=../shared/data/sst2
```
"""

import os

import numpy as np
import tensorflow as tf
from absl import flags

from kdistill import cli, io
from kdistill.errors import KdistillError

INPUT_NAME = "texts"
OUTPUT_NAME = "probabilities"
SIGNATURE_KEY = "serving_default"
# TF Text's LiteRT kernels for the tokenizer's ops (tensorflow_text.core.pybinds.tflite_registrar).
CUSTOM_OP_REGISTERERS = ("AddFastBertNormalize", "AddFastWordpieceTokenize", "AddRaggedTensorToTensor")


# Each mode only configures the converter, so float16 or int8 (which needs a
# representative dataset) can be added here without touching the export itself.
def _float32(converter):
    """The converter's defaults: full-precision weights, bit-for-bit the Keras maths."""


def _dynamic_range(converter):
    # Weights stored as int8, activations stay float: no calibration data needed. Only
    # the network shrinks (4x); the tokenizer's vocabulary buffers, ~1.9 MB, do not.
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


MODES = {
    "float32": _float32,
    "dynamic": _dynamic_range,
}


class _TextClassifier(tf.Module):
    """The student behind one function: a batch of strings in, probabilities out."""

    def __init__(self, student):
        super().__init__()
        self.student = student
        # tf.Module does not see a Keras 3 model's variables; without this list the
        # converter cannot freeze them and silently writes a model that outputs NaN.
        self.student_variables = [v.value for v in student.variables]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
    def serve(self, texts):
        return {OUTPUT_NAME: tf.nn.softmax(self.student(texts, training=False), axis=-1)}


def export_student(student, path, mode="dynamic"):
    """Writes `student` as a `.tflite` model (strings in, probabilities out) and `<path>.json`.

    Returns `path`.
    """
    if mode not in MODES:
        raise ValueError(f"unknown export mode {mode!r}; choose one of {sorted(MODES)}")
    module = _TextClassifier(student)
    concrete = module.serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], trackable_obj=module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    # The TF Text ops have no builtin kernels; they stay as custom ops that
    # TFLiteClassifier (or the app) registers from tensorflow_text.
    converter.allow_custom_ops = True
    MODES[mode](converter)
    flatbuffer = converter.convert()

    with io.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
    io.write_json(
        {
            "class_names": list(student.class_names),
            "sequence_length": student.tokenizer.sequence_length,
            "mode": mode,
            "signature": SIGNATURE_KEY,
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "custom_op_registerers": list(CUSTOM_OP_REGISTERERS),
        },
        path + ".json",
    )
    return path


class TFLiteClassifier:
    """Runs an exported `.tflite` student with LiteRT and TF Text's custom-op kernels."""

    def __init__(self, path):
        from ai_edge_litert.interpreter import InterpreterWithCustomOps
        from tensorflow_text.core.pybinds import tflite_registrar

        if not os.path.isfile(path):
            raise KdistillError(f"{path}: no .tflite model here; export one first or fix the path")
        self.interpreter = InterpreterWithCustomOps(
            model_path=path,
            # The pybind functions themselves; their names as strings fail, as LiteRT
            # looks them up in its own library, where TF Text's symbols are absent.
            custom_op_registerers=[getattr(tflite_registrar, name) for name in CUSTOM_OP_REGISTERERS],
            num_threads=1,
        )
        self._run = self.interpreter.get_signature_runner(SIGNATURE_KEY)

    def predict_proba(self, texts):
        """Class probabilities, shape `(len(texts), num_classes)`."""
        rows = []
        # One text per call, as the app runs it, so parity measures the path the
        # phone takes; the signature runner resizes the input to [1] itself.
        for text in texts:
            batch = np.array([text.encode("utf-8") if isinstance(text, str) else text], dtype=object)
            rows.append(self._run(**{INPUT_NAME: batch})[OUTPUT_NAME][0])
        if not rows:
            num_classes = self._run.get_output_details()[OUTPUT_NAME]["shape"][-1]
            return np.zeros((0, num_classes), np.float32)
        return np.stack(rows).astype(np.float32)


def parity(student, tflite_path, texts):
    """How closely the `.tflite` model matches the Keras student on `texts`."""
    texts = list(texts)
    expected = _softmax(student.predict_texts(texts))
    actual = TFLiteClassifier(tflite_path).predict_proba(texts)
    diff = np.abs(expected - actual)
    return {
        "rows": len(texts),
        "agreement": float(np.mean(expected.argmax(-1) == actual.argmax(-1))) if texts else 1.0,
        "max_abs_diff": float(diff.max()) if texts else 0.0,
        "mean_abs_diff": float(diff.mean()) if texts else 0.0,
    }


def _softmax(logits):
    logits = np.asarray(logits, np.float64)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


# --- command line -------------------------------------------------------------

FLAGS = flags.FLAGS


def _define_flags():
    # Defined only when run as a binary, so apps that import this module keep their own flags.
    flags.DEFINE_string("student_dir", None, "Folder holding student.keras, or a path to a .keras file.")
    flags.DEFINE_enum("mode", "dynamic", sorted(MODES), "Quantisation of the exported model.")
    flags.DEFINE_string("out", None, "The .tflite path (default: <student_dir>/student_<mode>.tflite).")
    flags.DEFINE_string("dataset", None, "Optional dataset spec; parity is measured on its dev texts.")


def _student_path(student_dir):
    if student_dir.endswith(".keras"):
        return student_dir
    return os.path.join(student_dir, "student.keras")


def main(argv):
    del argv
    if not FLAGS.student_dir:
        raise KdistillError("--student_dir is required; point it at a trained student's folder")
    model_path = _student_path(FLAGS.student_dir)
    student = io.load_model(model_path, "student")
    dev_texts = None
    if FLAGS.dataset:  # read before the slow export, so a bad path fails fast
        from kdistill import data

        dev_texts = data.load(FLAGS.dataset, num_labels=len(student.class_names), seed=0).dev_texts
    out = FLAGS.out or os.path.join(os.path.dirname(model_path), f"student_{FLAGS.mode}.tflite")
    export_student(student, out, mode=FLAGS.mode)
    summary = f"wrote {out} ({os.path.getsize(out) / 1024:.0f} KiB, {FLAGS.mode})"
    if dev_texts is not None:
        report = parity(student, out, dev_texts)
        io.write_json(report, out + ".report.json")
        summary += (
            f"; parity on {report['rows']} dev texts: agreement {report['agreement']:.4f}, "
            f"max |dp| {report['max_abs_diff']:.2e}"
        )
    print(summary)


def run():
    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
