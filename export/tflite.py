"""Export a trained student to LiteRT (`.tflite`) for phones: four quantisation modes, three input kinds.

- `kind="mediapipe"`: what MediaPipe Tasks' `TextClassifier` (Android, iOS,
  web, Python) and the TFLite Task Library's `BertNLClassifier` load as they
  are. Three int32 BERT inputs (`ids`, `mask`, `segment_ids`); the client
  tokenizes with the WordPiece vocabulary packed in the model and reads the
  class names from its label file. No custom ops, nothing hand-written on the phone.
- `kind="text"` (default): a batch of raw UTF-8 strings, tokenized in the graph
  by TF Text's ops, which LiteRT runs as custom ops: for runtimes that register
  TF Text's kernels.
- `kind="token_ids"`: WordPiece ids in, for runtimes that tokenize themselves;
  its vocabulary travels inside it and beside it (`<model>.vocab.txt`).

See `export.graph` for why all three are exact re-wirings of the Keras student.
Every model carries standard TFLite Metadata (`export.standard_metadata`): the
class names as a label file and, where the app tokenizes, the vocabulary.

Modes: `float32` (the Keras maths), `float16` (half-size weights), `dynamic`
(int8 weights, float activations) and `int8` (int8 weights and activations,
calibrated on sample texts, int8 probabilities out; MediaPipe refuses an int8
output, so its int8 model keeps a float32 one).

Every export writes `<model>.json`, the metadata also stored in the model
(`export.metadata`); the command line also writes `<model>.report.json`, the
parity, size and latency report (`export.report`).

`--target=web` exports the MediaPipe model, writes the folder that runs it in any
browser (`export.web`: page, model, model.json) and checks it in headless
Chromium (`export.browser`), adding the browser's agreement with the Keras student
and with MediaPipe Python, and its ms per text, to the report, with a screenshot
`<model>.page.png`.

Example:

```python
from kdistill import io
from kdistill.export.tflite import TFLiteClassifier, export_student, parity

student = io.load_model("runs/demo/student/student.keras", "student")
export_student(student, "runs/demo/student_int8.tflite", mode="int8", calibration_texts=some_texts)
export_student(student, "runs/demo/student_dynamic_mediapipe.tflite", kind="mediapipe")
TFLiteClassifier("runs/demo/student_int8.tflite").predict_proba(["a gripping, funny film"])  # [[0.03, 0.97]]
parity(student, "runs/demo/student_int8.tflite", dev_texts)["agreement"]
```

From the command line (the MediaPipe model; then all four modes of the other two kinds):

```
python -m export.tflite --student_dir=runs/demo/student --target=mediapipe --mode=all --dataset=../shared/data/sst2
python -m export.tflite --student_dir=runs/demo/student --mode=all --both_inputs --dataset=../shared/data/sst2
python -m export.tflite --student_dir=runs/demo/student --target=web --web_assets=local --dataset=../shared/data/sst2
```
"""

import os
import time

import numpy as np
import tensorflow as tf
from absl import flags

from kdistill import cli, io
from kdistill.errors import KdistillError
from kdistill.export import browser as browser_lib, graph, metadata, report, runtime, standard_metadata, web
from kdistill.export.report import parity  # noqa: F401  (part of this module's API)
from kdistill.export.runtime import CUSTOM_OP_REGISTERERS, SIGNATURE_KEY, TFLiteClassifier, custom_op_registerers  # noqa: F401

INPUT_NAME = graph.TEXT_INPUT
IDS_INPUT_NAME = graph.IDS_INPUT
OUTPUT_NAME = graph.OUTPUT
# The custom ops a text-in model holds, as the converter names them.
CUSTOM_OPS = ("FastBertNormalize", "FastWordpieceTokenizeWithOffsets", "RaggedTensorToTensor")
DEFAULT_CALIBRATION_SIZE = 500
# Input kind -> the graph that gets converted.
KINDS = {"text": graph.TextModule, "token_ids": graph.TokenIdsModule, "mediapipe": graph.BertInputsModule}
_SUFFIXES = {"text": "", "token_ids": "_ids", "mediapipe": "_mediapipe"}
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


def export_student(student, path, mode="dynamic", kind="text", calibration_texts=None):
    """Writes `student` as a `.tflite` model, `<path>.json` and (token ids) `<path>.vocab.txt`.

    Args:
        student: a `kdistill.student.Student`.
        path: the `.tflite` file to write.
        mode: one of `MODES`.
        kind: one of `KINDS`: "text", "token_ids" or "mediapipe".
        calibration_texts: sample texts for `int8` (a few hundred transfer-set texts).

    Returns `path`.
    """
    if mode not in MODES:
        raise ValueError(f"unknown export mode {mode!r}; choose one of {sorted(MODES)}")
    if kind not in KINDS:
        raise ValueError(f"unknown input kind {kind!r}; choose one of {sorted(KINDS)}")
    calibration_texts = None if calibration_texts is None else list(calibration_texts)
    if mode == "int8" and not calibration_texts:
        raise ValueError("int8 export needs calibration_texts: a few hundred texts like the ones it will see")
    module = KINDS[kind](student)
    flatbuffer, quantization = convert_module(
        module, mode, _calibration(module, kind, calibration_texts), float_output=kind == "mediapipe",
        # Per-channel dynamic-range dense layers need FULLY_CONNECTED v12, which the Task
        # Library's last runtime (tflite-support 0.4.4) lacks; per-tensor scales keep the
        # MediaPipe file loadable there too. On the demo student both give 99.66% agreement.
        per_tensor_dense=kind == "mediapipe" and mode == "dynamic",
    )
    meta = _metadata(student, module, mode, kind, quantization, flatbuffer)
    standard, files = _standard_metadata(student, module, kind, flatbuffer)
    flatbuffer = metadata.embed(flatbuffer, meta, {standard_metadata.METADATA_NAME: standard})
    flatbuffer = standard_metadata.append_files(flatbuffer, files)

    with io.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
    if kind == "token_ids":
        vocabulary_path = path + ".vocab.txt"
        with io.atomic_path(vocabulary_path) as tmp:
            with open(tmp, "wb") as f:
                f.write(files[standard_metadata.VOCABULARY_FILE])
        meta = dict(meta, vocabulary_file=os.path.basename(vocabulary_path))
    io.write_json(meta, path + ".json")
    return path


def _calibration(module, kind, texts):
    if not texts:
        return None
    if kind != "text":
        tokenize = graph.WordpieceIds(module.vocabulary.pieces, module.sequence_length, module.lowercase)

    def samples():
        # One text per sample, as the model will be run; min/max calibration does not
        # care how the texts are batched.
        for text in texts:
            if kind == "text":
                # Fixed-width bytes: TF's calibrator reads an object array or a tf.string
                # tensor as garbage (the pointers, it seems) and calibrates on that silently.
                yield [np.array([text.encode("utf-8")], dtype=np.bytes_)]
            elif kind == "token_ids":
                yield [tokenize.numpy([text])]
            else:
                # By name: the converter orders the model's inputs its own way (ids, segment_ids, mask).
                yield dict(zip(graph.BERT_INPUTS, graph.bert_inputs(tokenize.numpy([text]), module.vocabulary.pieces)))

    return samples


def convert_module(module, mode, calibration=None, float_output=False, per_tensor_dense=False):
    """Converts a tf.Module with a `serve` tf.function under `mode`; returns (flatbuffer, what it did).

    `float_output` keeps an int8 model's output float32 (a dequantize at the end);
    `per_tensor_dense` quantises dense layers with one scale each instead of one per channel.
    """
    concrete = module.serve.get_concrete_function()

    def convert(configure_supported_ops):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], trackable_obj=module)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        # The TF Text ops have no builtin kernels; they stay as custom ops that
        # TFLiteClassifier (or the app) registers from tensorflow_text.
        converter.allow_custom_ops = True
        quantization = MODES[mode](converter, calibration)
        if float_output and "output" in quantization:
            converter.inference_output_type = tf.float32
            quantization["output"] = "float32"
        if per_tensor_dense:
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
            quantization["dense_layers"] = "per-tensor scales"
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


_TOKENIZATION = {
    "token_ids": (
        "Normalise as TF Text's FastBertNormalizer(lower_case_nfd_strip_accents=True): case-fold, NFD, "
        "strip accents (it also expands compatibility characters, e.g. 'ﬁ' -> 'fi'); split on whitespace, "
        "punctuation and CJK characters; WordPiece (longest match first, '##' continuations, words over "
        "100 bytes or with no match -> [UNK]) over vocab.txt, ids being line numbers; pad with 0 or truncate "
        "to sequence_length. Ids >= student_vocabulary_size are pieces the student dropped; the model maps "
        "them to [UNK] itself."
    ),
    "mediapipe": (
        "MediaPipe's BERT preprocessor: lower-case ASCII letters (no accent stripping), split on whitespace "
        "and punctuation, WordPiece over the packed vocab.txt; ids = [CLS] + the first sequence_length pieces "
        "+ [SEP], 0-padded; mask 1 on those; segment ids 0. The model drops [CLS]/[SEP] and maps ids >= "
        "student_vocabulary_size to [UNK] itself."
    ),
}


def _metadata(student, module, mode, kind, quantization, flatbuffer):
    output = _output_quantization(flatbuffer)
    meta = {
        "format": "kdistill-tflite-1",
        "mode": mode,
        "input": kind,
        "signature": SIGNATURE_KEY,
        "input_name": {"text": INPUT_NAME, "token_ids": IDS_INPUT_NAME, "mediapipe": list(graph.BERT_INPUTS)}[kind],
        "input_dtype": "string" if kind == "text" else "int32",
        "input_shape": {"text": [-1], "token_ids": [-1, module.sequence_length],
                        "mediapipe": [1, module.sequence_length + 2]}[kind],
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
    if kind == "text":
        meta["vocabulary"] = "in the graph (FastWordpieceTokenize op)"
        meta["custom_ops"] = list(CUSTOM_OPS)
        meta["custom_op_registerers"] = list(CUSTOM_OP_REGISTERERS)
    else:
        meta["vocabulary"] = standard_metadata.VOCABULARY_FILE
        meta["custom_op_registerers"] = []
        meta["tokenization"] = _TOKENIZATION[kind]
    return meta


def _standard_metadata(student, module, kind, flatbuffer):
    """The TFLITE_METADATA buffer and the files to pack with it."""
    files = {standard_metadata.LABELS_FILE: "".join(f"{name}\n" for name in student.class_names).encode("utf-8")}
    units = []
    if kind == "text":
        inputs = [standard_metadata.text_input(INPUT_NAME)]
    else:
        files[standard_metadata.VOCABULARY_FILE] = metadata.vocabulary_bytes(module.vocabulary.pieces)
        units = [standard_metadata.bert_tokenizer()]
        if kind == "token_ids":
            inputs = [standard_metadata.token_ids_input(IDS_INPUT_NAME, module.sequence_length)]
        else:
            inputs = standard_metadata.bert_inputs(_input_names(flatbuffer))
    meta = standard_metadata.model_metadata(
        "kdistill student",
        f"Conv1D text classifier distilled from a BERT teacher; classes: {', '.join(student.class_names)}.",
        inputs=inputs,
        outputs=[standard_metadata.probability_output()],
        input_process_units=units,
    )
    return standard_metadata.metadata_bytes(meta), files


def _input_names(flatbuffer):
    """The converted model's input names, in its own input order ("serving_default_ids:0" -> "ids")."""
    from tensorflow.lite.python import schema_py_generated as schema_fb

    subgraph = schema_fb.Model.GetRootAsModel(flatbuffer, 0).Subgraphs(0)
    return [runtime.input_name(subgraph.Tensors(i).Name().decode("utf-8")) for i in subgraph.InputsAsNumpy()]


def _output_quantization(flatbuffer):
    from tensorflow.lite.python import schema_py_generated as schema_fb

    model = schema_fb.Model.GetRootAsModel(flatbuffer, 0)
    subgraph = model.Subgraphs(0)
    tensor = subgraph.Tensors(subgraph.Outputs(0))
    if tensor.Type() not in (schema_fb.TensorType.INT8, schema_fb.TensorType.UINT8):
        return None
    q = tensor.Quantization()
    return {"scale": float(q.Scale(0)), "zero_point": int(q.ZeroPoint(0))}


def default_path(folder, mode, kind="text"):
    return os.path.join(folder, f"student_{mode}{_SUFFIXES[kind]}.tflite")


def export_and_report(student, folder, modes, kinds, dev_texts, calibration_texts=None, paths=None, browser=False,
                      run_info=None):
    """Exports every mode for every input kind, with a report each; returns the reports.

    With more than one model a combined `export_report.md` and `.json` go in `folder`.
    `paths` optionally maps (mode, kind) to the `.tflite` path to write. With `browser`,
    each MediaPipe model is also checked in headless Chromium (`export.browser.parity`,
    screenshot `<model>.page.png`), its page showing `run_info` (`web.model_info`'s `run`).
    """
    keras_probabilities = report.softmax(student.predict_texts(dev_texts))
    reports = []
    for kind in kinds:
        for mode in modes:
            path = (paths or {}).get((mode, kind)) or default_path(folder, mode, kind)
            start = time.time()
            export_student(student, path, mode, kind, calibration_texts if mode == "int8" else None)
            seconds = time.time() - start
            result = report.parity(student, path, dev_texts, keras_probabilities)
            result["export_seconds"] = round(seconds, 2)
            if browser and kind == "mediapipe":
                result.update(browser_lib.parity(path, dev_texts, keras_probabilities, screenshot=path + ".page.png",
                                                 info=web.model_info(path, run_info)))
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
                if any(r["input"] == "mediapipe" for r in reports):
                    f.write("\n" + report.format_mediapipe_table(reports) + "\n")
                if any("browser_agreement_with_mediapipe" in r for r in reports):
                    f.write("\n" + browser_lib.format_table(reports) + "\n")
    return reports


# --- command line -------------------------------------------------------------

FLAGS = flags.FLAGS


def define_flags():
    # Defined only when run as a binary, so apps that import this module keep their own flags.
    flags.DEFINE_string("student_dir", None, "Folder holding student.keras, or a path to a .keras file.")
    flags.DEFINE_enum("target", "litert", ["litert", "mediapipe", "web"], "mediapipe: the model MediaPipe Tasks' "
                      "TextClassifier and the Task Library's BertNLClassifier load as they are (BERT inputs, "
                      "standard metadata); web: that model plus the folder that runs it in a browser "
                      "(<out folder>/web: page, model, model.json), checked in headless Chromium; litert: the "
                      "text-in model (TF Text custom ops) or, with --token_ids_input, the token-ids one.")
    flags.DEFINE_enum("web_assets", "cdn", list(web.ASSETS), "--target=web: where the page loads MediaPipe's web "
                      "JS and WASM from: cdn (a pinned jsdelivr URL; the folder stays small) or local (copied from "
                      "the checkout's npm install, `make web-deps`: the page works with no network).")
    flags.DEFINE_enum("browser_check", "auto", list(browser_lib.CHOICES), "--target=web: check the page in headless "
                      "Chromium on the dev texts (needs `make web-deps`); auto: when Chromium, playwright and the "
                      "npm package are there, else say so and skip it.")
    flags.DEFINE_enum("mode", "dynamic", sorted(MODES) + ["all"], "Quantisation of the exported model; "
                      "'all' exports every mode and writes a combined export_report.md/.json.")
    flags.DEFINE_string("out", None, "The .tflite path (default <student folder>/student_<mode>[_ids|_mediapipe].tflite); "
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
    check = False
    if FLAGS.target in ("mediapipe", "web"):
        if FLAGS.both_inputs or FLAGS.token_ids_input:
            raise KdistillError(f"--target={FLAGS.target} takes no --both_inputs/--token_ids_input: its inputs are "
                                "MediaPipe's; drop those flags, or export them with --target=litert")
        kinds = ["mediapipe"]
        check = FLAGS.target == "web" and browser_lib.wanted(FLAGS.browser_check, "--browser_check")
    else:
        kinds = ["text", "token_ids"] if FLAGS.both_inputs else ["token_ids" if FLAGS.token_ids_input else "text"]

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
            paths[(FLAGS.mode, kinds[0])] = FLAGS.out
            if len(kinds) > 1:
                paths[(FLAGS.mode, "token_ids")] = _ids_path(FLAGS.out)
    run_info = web.run_info(os.path.dirname(model_path))
    reports = export_and_report(
        student, folder, modes, kinds, splits.dev_texts, list(splits.unlabelled_texts), paths, check, run_info
    )
    print(report.format_table(reports))
    if FLAGS.target in ("mediapipe", "web"):
        print(report.format_mediapipe_table(reports))
    if check:
        print(browser_lib.format_table(reports))
    if FLAGS.target == "web":
        # One page per run: the phone's model (dynamic) when it was exported.
        chosen = next((r for r in reports if r["mode"] == "dynamic"), reports[0])
        model = os.path.join(folder, chosen["model"])
        web_dir = web.write(os.path.join(folder, web.WEB_DIR), model, web.model_info(model, run_info),
                            assets=FLAGS.web_assets)
        print(f"web page: {web_dir} (python -m apps.serve --web_dir={web_dir})")
    written = ", ".join(os.path.join(folder, r["model"]) for r in reports)
    print(f"wrote {written} (+ .json, .report.json each) in {time.time() - start:.1f} s")
    if len(reports) > 1:
        print(f"combined report: {os.path.join(folder, REPORT_NAME)}.md and .json")


def _ids_path(path):
    stem, ext = os.path.splitext(path)
    return f"{stem}_ids{ext or '.tflite'}"


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
