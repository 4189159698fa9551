"""Export a trained student to LiteRT (`.tflite`) for phones: four quantisation modes, two input kinds.

By default the model takes a batch of raw UTF-8 strings and tokenizes them in
the graph (TF Text ops, run by LiteRT as custom ops): the app passes text and
gets class probabilities. `token_ids_input=True` exports the variant that takes
WordPiece ids instead, for runtimes without TF Text's kernels; its vocabulary
travels inside it and beside it (`<model>.vocab.txt`). See `export.graph` for
why both are exact re-wirings of the Keras student.

Modes: `float32` (the Keras maths), `float16` (half-size weights), `dynamic`
(int8 weights, float activations) and `int8` (int8 weights and activations,
calibrated on sample texts, int8 probabilities out).

Every export writes `<model>.json`, the metadata also stored in the model
(`export.metadata`); the command line also writes `<model>.report.json`, the
parity, size and latency report (`export.report`).

Example:

```python
from export.tflite import TFLiteClassifier, export_student, parity
from kdistill import io

student = io.load_model("runs/demo/student/student.keras", "student")
export_student(student, "runs/demo/student_int8.tflite", mode="int8", calibration_texts=some_texts)
TFLiteClassifier("runs/demo/student_int8.tflite").predict_proba(["a gripping, funny film"])  # [[0.03, 0.97]]
parity(student, "runs/demo/student_int8.tflite", dev_texts)["agreement"]
```

From the command line (all four modes, both input kinds, one combined table):

```
python -m export.tflite --student_dir=runs/demo/student --mode=all --both_inputs --dataset=../shared/data/sst2
```
"""

import os
import time

import numpy as np
import tensorflow as tf
from absl import flags

from export import graph, metadata, report
from export.report import parity  # noqa: F401  (part of this module's API)
from export.runtime import CUSTOM_OP_REGISTERERS, SIGNATURE_KEY, TFLiteClassifier, custom_op_registerers  # noqa: F401
from kdistill import cli, io
from kdistill.errors import KdistillError

INPUT_NAME = graph.TEXT_INPUT
IDS_INPUT_NAME = graph.IDS_INPUT
OUTPUT_NAME = graph.OUTPUT
# The custom ops a text-in model holds, as the converter names them.
CUSTOM_OPS = ("FastBertNormalize", "FastWordpieceTokenizeWithOffsets", "RaggedTensorToTensor")
DEFAULT_CALIBRATION_SIZE = 500
REPORT_NAME = "export_report"


# Each mode only configures the converter; what it did is returned for the metadata.
def _float32(converter, calibration):
    """The converter's defaults: full-precision weights, bit-for-bit the Keras maths."""
    return {"weights": "float32", "activations": "float32"}


def _float16(converter, calibration):
    # Weights stored as float16 and widened on load: half the network's bytes, float32 maths.
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return {"weights": "float16", "activations": "float32"}


def _dynamic_range(converter, calibration):
    # Weights stored as int8, activations stay float: no calibration data needed.
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return {"weights": "int8", "activations": "float32 (int8 inside matmuls and convolutions)"}


def _int8(converter, calibration):
    # Full-integer quantisation. The string input cannot be an integer type, and
    # token ids are int32 already, so only the output becomes int8. The calibrator
    # runs the model, tokenizer included, so it needs TF Text's kernels too; the
    # converter only accepts them through this private target_spec field.
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.target_spec._experimental_custom_op_registerers = custom_op_registerers()
    converter.inference_output_type = tf.int8
    return {
        "weights": "int8",
        # ZEROS_LIKE has no int8 kernel, so the converter leaves the student's empty-text guard
        # after each max-over-time in float: dequantize, select, quantize, on 128 values.
        "activations": "int8 (except the empty-text guard after each max-over-time)",
        "ops": "TFLITE_BUILTINS_INT8",
        "output": "int8",
    }


MODES = {
    "float32": _float32,
    "float16": _float16,
    "dynamic": _dynamic_range,
    "int8": _int8,
}


def export_student(student, path, mode="dynamic", token_ids_input=False, calibration_texts=None):
    """Writes `student` as a `.tflite` model, `<path>.json` and (token ids) `<path>.vocab.txt`.

    Args:
        student: a `kdistill.student.Student`.
        path: the `.tflite` file to write.
        mode: one of `MODES`.
        token_ids_input: take `(batch, sequence_length)` int32 ids instead of strings.
        calibration_texts: sample texts for `int8` (a few hundred transfer-set texts).

    Returns `path`.
    """
    if mode not in MODES:
        raise ValueError(f"unknown export mode {mode!r}; choose one of {sorted(MODES)}")
    calibration_texts = None if calibration_texts is None else list(calibration_texts)
    if mode == "int8" and not calibration_texts:
        raise ValueError("int8 export needs calibration_texts: a few hundred texts like the ones it will see")
    module = graph.TokenIdsModule(student) if token_ids_input else graph.TextModule(student)
    flatbuffer, quantization = convert_module(module, mode, _calibration(module, token_ids_input, calibration_texts))
    meta = _metadata(student, module, mode, token_ids_input, quantization, flatbuffer)
    files = {}
    if token_ids_input:
        files[metadata.VOCABULARY_NAME] = metadata.vocabulary_bytes(module.vocabulary.pieces)
    flatbuffer = metadata.embed(flatbuffer, meta, files)

    with io.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
    if token_ids_input:
        vocabulary_path = path + ".vocab.txt"
        with io.atomic_path(vocabulary_path) as tmp:
            with open(tmp, "wb") as f:
                f.write(files[metadata.VOCABULARY_NAME])
        meta = dict(meta, vocabulary_file=os.path.basename(vocabulary_path))
    io.write_json(meta, path + ".json")
    return path


def _calibration(module, token_ids_input, texts):
    if not texts:
        return None
    if token_ids_input:
        tokenize = graph.WordpieceIds(module.vocabulary.pieces, module.sequence_length, module.lowercase)

    def samples():
        # One text per sample, as the model will be run; min/max calibration does not
        # care how the texts are batched.
        for text in texts:
            if token_ids_input:
                yield [tokenize.numpy([text])]
            else:
                # Fixed-width bytes: TF's calibrator reads an object array or a tf.string
                # tensor as garbage (the pointers, it seems) and calibrates on that silently.
                yield [np.array([text.encode("utf-8")], dtype=np.bytes_)]

    return samples


def convert_module(module, mode, calibration=None):
    """Converts a tf.Module with a `serve` tf.function under `mode`; returns (flatbuffer, what it did)."""
    concrete = module.serve.get_concrete_function()

    def convert(configure_supported_ops):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], trackable_obj=module)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        # The TF Text ops have no builtin kernels; they stay as custom ops that
        # TFLiteClassifier (or the app) registers from tensorflow_text.
        converter.allow_custom_ops = True
        quantization = MODES[mode](converter, calibration)
        configure_supported_ops(converter, quantization)
        return converter.convert(), quantization

    try:
        return convert(lambda converter, quantization: None)
    except Exception as e:  # the converter raises ConverterError and plain RuntimeErrors alike
        if mode != "int8":
            raise

        # Should the int8-only op set reject an op, quantise what can be and keep the
        # rest float, and say so in the metadata.
        def builtins(converter, quantization):
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            quantization.update(ops="TFLITE_BUILTINS (int8 where possible)", int8_only_error=str(e)[:300])

        return convert(builtins)


def _metadata(student, module, mode, token_ids_input, quantization, flatbuffer):
    output = _output_quantization(flatbuffer)
    meta = {
        "format": "kdistill-tflite-1",
        "mode": mode,
        "input": "token_ids" if token_ids_input else "text",
        "signature": SIGNATURE_KEY,
        "input_name": IDS_INPUT_NAME if token_ids_input else INPUT_NAME,
        "input_dtype": "int32" if token_ids_input else "string",
        "input_shape": [-1, module.sequence_length] if token_ids_input else [-1],
        "output_name": OUTPUT_NAME,
        "output_dtype": "int8" if output else "float32",
        "class_names": list(student.class_names),
        "sequence_length": module.sequence_length,
        "lowercase": student.tokenizer.lowercase,
        "vocabulary_size": len(module.vocabulary.pieces),
        "student_vocabulary_size": module.vocabulary.kept,
        "pad_id": 0,
        "unk_id": module.vocabulary.unk_id,
        "quantization": quantization,
    }
    if output:
        meta["output_quantization"] = output  # probability = (q - zero_point) * scale
    if token_ids_input:
        meta["vocabulary"] = metadata.VOCABULARY_NAME
        meta["custom_op_registerers"] = []
        meta["tokenization"] = (
            "Normalise as TF Text's FastBertNormalizer(lower_case_nfd_strip_accents=True): case-fold, NFD, "
            "strip accents (it also expands compatibility characters, e.g. 'ﬁ' -> 'fi'); split on whitespace, "
            "punctuation and CJK characters; WordPiece (longest match first, '##' continuations, words over "
            "100 bytes or with no match -> [UNK]) over vocab.txt, ids being line numbers; pad with 0 or truncate "
            "to sequence_length. Ids >= student_vocabulary_size are pieces the student dropped; the model maps "
            "them to [UNK] itself."
        )
    else:
        meta["vocabulary"] = "in the graph (FastWordpieceTokenize op)"
        meta["custom_ops"] = list(CUSTOM_OPS)
        meta["custom_op_registerers"] = list(CUSTOM_OP_REGISTERERS)
    return meta


def _output_quantization(flatbuffer):
    from tensorflow.lite.python import schema_py_generated as schema_fb

    model = schema_fb.Model.GetRootAsModel(flatbuffer, 0)
    subgraph = model.Subgraphs(0)
    tensor = subgraph.Tensors(subgraph.Outputs(0))
    if tensor.Type() not in (schema_fb.TensorType.INT8, schema_fb.TensorType.UINT8):
        return None
    q = tensor.Quantization()
    return {"scale": float(q.Scale(0)), "zero_point": int(q.ZeroPoint(0))}


def default_path(folder, mode, token_ids_input=False):
    return os.path.join(folder, f"student_{mode}{'_ids' if token_ids_input else ''}.tflite")


def export_and_report(student, folder, modes, inputs, dev_texts, calibration_texts=None, paths=None):
    """Exports every mode for every input kind, with a report each; returns the reports.

    With more than one model a combined `export_report.md` and `.json` go in `folder`.
    `paths` optionally maps (mode, token_ids_input) to the `.tflite` path to write.
    """
    keras_probabilities = report.softmax(student.predict_texts(dev_texts))
    reports = []
    for token_ids_input in inputs:
        for mode in modes:
            path = (paths or {}).get((mode, token_ids_input)) or default_path(folder, mode, token_ids_input)
            start = time.time()
            export_student(student, path, mode, token_ids_input, calibration_texts if mode == "int8" else None)
            seconds = time.time() - start
            result = report.parity(student, path, dev_texts, keras_probabilities)
            result["export_seconds"] = round(seconds, 2)
            if mode == "int8":
                result["calibration_texts"] = len(calibration_texts)
            io.write_json(result, path + ".report.json")
            reports.append(result)
    if len(reports) > 1:
        io.write_json(reports, os.path.join(folder, REPORT_NAME + ".json"))
        with io.atomic_path(os.path.join(folder, REPORT_NAME + ".md")) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(f"Parity with the Keras student on {len(dev_texts)} dev texts; latency batch 1, 1 thread.\n\n")
                f.write(report.format_table(reports) + "\n")
    return reports


# --- command line -------------------------------------------------------------

FLAGS = flags.FLAGS


def _define_flags():
    # Defined only when run as a binary, so apps that import this module keep their own flags.
    flags.DEFINE_string("student_dir", None, "Folder holding student.keras, or a path to a .keras file.")
    flags.DEFINE_enum("mode", "dynamic", sorted(MODES) + ["all"], "Quantisation of the exported model; "
                      "'all' exports every mode and writes a combined export_report.md/.json.")
    flags.DEFINE_string("out", None, "The .tflite path (default <student folder>/student_<mode>[_ids].tflite); "
                        "with --mode=all, the folder for the models (default the student's folder).")
    flags.DEFINE_string("dataset", None, "Dataset spec: parity and latency on its dev texts, int8 calibration "
                        "on its unlabelled (train) texts.")
    flags.DEFINE_string("encoding", "utf-8", "Text encoding of the dataset's local files.")
    flags.DEFINE_bool("token_ids_input", False, "Export the variant that takes token ids (with its vocabulary) "
                      "instead of text, for runtimes without TF Text's ops.")
    flags.DEFINE_bool("both_inputs", False, "Export the text-in and the token-ids variant of each mode.")
    flags.DEFINE_integer("calibration_size", DEFAULT_CALIBRATION_SIZE, "int8: how many of the dataset's "
                         "unlabelled texts calibrate the activation ranges.", lower_bound=1)


def _student_path(student_dir):
    if student_dir.endswith(".keras"):
        return student_dir
    return os.path.join(student_dir, "student.keras")


def main(argv):
    del argv
    start = time.time()
    if not FLAGS.student_dir:
        raise KdistillError("--student_dir is required; point it at a trained student's folder")
    if not FLAGS.dataset:
        raise KdistillError("--dataset is required: the report compares the model with the Keras student on its "
                            "dev texts (and int8 calibrates on its unlabelled texts)")
    model_path = _student_path(FLAGS.student_dir)
    student = io.load_model(model_path, "student")
    modes = list(MODES) if FLAGS.mode == "all" else [FLAGS.mode]
    inputs = [False, True] if FLAGS.both_inputs else [FLAGS.token_ids_input]

    from kdistill import data

    # Read before the exports, so a bad path fails fast.
    splits = data.load(FLAGS.dataset, num_labels=len(student.class_names), seed=0,
                       max_unlabelled=FLAGS.calibration_size if "int8" in modes else 0, encoding=FLAGS.encoding)
    if splits.num_classes != len(student.class_names):
        raise KdistillError(f"{FLAGS.dataset}: {splits.num_classes} classes, but the student has "
                            f"{len(student.class_names)}; pass the dataset the student was trained on")

    paths = {}
    if FLAGS.mode == "all":
        folder = FLAGS.out or os.path.dirname(model_path)
    else:
        folder = os.path.dirname(FLAGS.out) if FLAGS.out else os.path.dirname(model_path)
        if FLAGS.out:
            paths[(FLAGS.mode, inputs[0])] = FLAGS.out
            if len(inputs) > 1:
                paths[(FLAGS.mode, True)] = _ids_path(FLAGS.out)
    reports = export_and_report(
        student, folder, modes, inputs, splits.dev_texts, list(splits.unlabelled_texts), paths
    )
    print(report.format_table(reports))
    written = ", ".join(os.path.join(folder, r["model"]) for r in reports)
    print(f"wrote {written} (+ .json, .report.json each) in {time.time() - start:.1f} s")
    if len(reports) > 1:
        print(f"combined report: {os.path.join(folder, REPORT_NAME)}.md and .json")


def _ids_path(path):
    stem, ext = os.path.splitext(path)
    return f"{stem}_ids{ext or '.tflite'}"


def run():
    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
