"""How well and how fast an exported model matches the Keras student: the parity and size report.

For one `.tflite` file: agreement of predicted labels with the Keras student,
max and mean absolute difference of the probabilities, file size (and how much
of it is the tokenizer, the network and the metadata), and batch-1 latency on
one LiteRT thread (`invoke()` alone, see `latency`), median and p90 over the texts. `format_table` renders a set
of reports for people (Markdown).

A MediaPipe model is also run by the real client, MediaPipe Tasks'
`TextClassifier`, which tokenizes on its own: lower-casing ASCII only, with
no accent stripping or Unicode normalisation. The report gives its agreement
with the Keras student and its largest difference from LiteRT on the same file (`format_mediapipe_table`). LiteRT is fed MediaPipe's own
tokenization there, so the LiteRT agreement already includes what that
tokenizer costs; the report also counts the texts it tokenizes differently.

Example:

```python
report = parity(student, "runs/demo/student/student_int8.tflite", dev_texts)
report["agreement"], report["size_bytes"], report["latency_ms_p50"]
print(format_table([report]))
```
"""

import os

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema_fb

from kdistill.export import latency, metadata, runtime, standard_metadata
from kdistill.report import softmax  # noqa: F401  (export.report.softmax is used by its callers too)

KIB = 1024


def parity(student, tflite_path, texts, keras_probabilities=None):
    """The report of `tflite_path` against `student` on `texts` (all of them, one per call).

    `keras_probabilities` can be passed when several models are compared on the same texts.
    """
    texts = list(texts)
    if keras_probabilities is None:
        keras_probabilities = softmax(student.predict_texts(texts))
    classifier = runtime.TFLiteClassifier(tflite_path)
    actual = classifier.predict_proba(texts)
    latencies = latency.invoke_latencies_ms(tflite_path, classifier.rows(texts)) if texts else []
    diff = np.abs(keras_probabilities - actual)
    stored = classifier.metadata
    report = {
        "model": os.path.basename(tflite_path),
        "mode": stored.get("mode"),
        "input": classifier.input_kind,
        "dev_rows": len(texts),
        "rows": len(texts),  # the name earlier reports used
        "agreement": float(np.mean(keras_probabilities.argmax(-1) == actual.argmax(-1))) if texts else 1.0,
        "max_abs_diff": float(diff.max()) if texts else 0.0,
        "mean_abs_diff": float(diff.mean()) if texts else 0.0,
        "latency_ms_p50": float(np.percentile(latencies, 50)) if texts else None,
        "latency_ms_p90": float(np.percentile(latencies, 90)) if texts else None,
        **size_breakdown(tflite_path),
    }
    if stored.get("quantization"):
        report["quantization"] = stored["quantization"]
    if classifier.input_kind == "mediapipe":
        report.update(mediapipe_parity(student, classifier, texts, keras_probabilities, actual))
    return report


def mediapipe_parity(student, litert, texts, keras_probabilities, litert_probabilities):
    """MediaPipe `TextClassifier` on `texts` against the Keras student and against LiteRT (`litert`,
    the `runtime.TFLiteClassifier` of the same file).

    LiteRT is fed MediaPipe's tokenization (`graph.MediaPipeWordpieceIds`), so the two
    should match to float rounding; `phone_tokenization_differs` counts the texts whose
    ids differ from the student's own tokenizer, the cost of MediaPipe's simpler one.
    """
    client = runtime.MediaPipeClassifier(litert.path)
    try:
        actual = client.predict_proba(texts)
    finally:
        client.close()
    if not texts:
        return {"mediapipe_agreement": 1.0, "mediapipe_max_abs_diff": 0.0, "phone_tokenization_differs": 0}
    stored = litert.metadata
    phone_ids = litert.token_ids(texts)
    phone_ids = np.where(phone_ids < stored["student_vocabulary_size"], phone_ids, stored["unk_id"])
    differs = np.any(phone_ids != np.asarray(student.tokenizer(texts)), axis=1)
    diff = np.abs(keras_probabilities - actual)
    return {
        "mediapipe_agreement": float(np.mean(keras_probabilities.argmax(-1) == actual.argmax(-1))),
        "mediapipe_max_abs_diff": float(diff.max()),
        "mediapipe_mean_abs_diff": float(diff.mean()),
        "mediapipe_vs_litert_max_abs_diff": float(np.abs(litert_probabilities - actual).max()),
        "mediapipe_category_names": client.category_names,
        "phone_tokenization_differs": int(differs.sum()),
    }


def size_breakdown(path):
    """File size, split into tokenizer buffers, metadata (incl. any vocabulary) and the rest (the network).

    Tokenizer bytes are the constant inputs of the custom ops (TF Text's
    normaliser and WordPiece models); the network is everything else: weights,
    the small constants and the graph itself.
    """
    with open(path, "rb") as f:
        flatbuffer = f.read()
    model = schema_fb.Model.GetRootAsModel(flatbuffer, 0)

    def buffer_size(index):
        buffer = model.Buffers(index)
        return buffer.Size() if buffer.Offset() else buffer.DataLength()

    custom_opcodes = {i for i in range(model.OperatorCodesLength()) if model.OperatorCodes(i).CustomCode()}
    tokenizer_buffers = set()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(o)
            if op.OpcodeIndex() in custom_opcodes:
                for i in op.InputsAsNumpy():
                    if i >= 0 and buffer_size(subgraph.Tensors(i).Buffer()) > 0:
                        tokenizer_buffers.add(subgraph.Tensors(i).Buffer())
    tokenizer = sum(buffer_size(b) for b in tokenizer_buffers)
    meta = sum(buffer_size(b) for b in metadata.metadata_entries(flatbuffer).values())
    meta += len(flatbuffer) - standard_metadata.packed_files_start(flatbuffer)  # label and vocabulary files
    return {
        "size_bytes": len(flatbuffer),
        "tokenizer_bytes": tokenizer,
        "metadata_bytes": meta,
        "network_bytes": len(flatbuffer) - tokenizer - meta,
    }


def format_table(reports):
    """A Markdown table of reports, one row per model; sizes relative to float32 of the same input."""
    float32 = {r["input"]: r["size_bytes"] for r in reports if r["mode"] == "float32"}
    lines = [
        "| model | input | mode | agreement | max abs diff | mean abs diff | size KiB | vs float32 "
        "| tokenizer KiB | network KiB | metadata KiB | p50 ms | p90 ms |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        ratio = f"{r['size_bytes'] / float32[r['input']]:.3f}" if r["input"] in float32 else "-"
        latency = [f"{r[k]:.3f}" if r[k] is not None else "-" for k in ("latency_ms_p50", "latency_ms_p90")]
        lines.append(
            f"| {r['model']} | {r['input']} | {r['mode']} | {r['agreement']:.2%} | {r['max_abs_diff']:.2e} "
            f"| {r['mean_abs_diff']:.2e} | {r['size_bytes'] / KIB:,.0f} | {ratio} | {r['tokenizer_bytes'] / KIB:,.0f} "
            f"| {r['network_bytes'] / KIB:,.0f} | {r['metadata_bytes'] / KIB:,.0f} | {latency[0]} | {latency[1]} |"
        )
    return "\n".join(lines)


def format_mediapipe_table(reports):
    """A Markdown table of what MediaPipe's own client measured, one row per MediaPipe model."""
    lines = [
        "| model | mode | size KiB | LiteRT agreement | MediaPipe agreement | MediaPipe max abs diff "
        "| MediaPipe vs LiteRT max abs diff | texts MediaPipe tokenizes differently | category names |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in reports:
        if r["input"] != "mediapipe":
            continue
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['size_bytes'] / KIB:,.0f} | {r['agreement']:.2%} "
            f"| {r['mediapipe_agreement']:.2%} | {r['mediapipe_max_abs_diff']:.2e} "
            f"| {r['mediapipe_vs_litert_max_abs_diff']:.2e} | {r['phone_tokenization_differs']} of {r['dev_rows']} "
            f"| {', '.join(r.get('mediapipe_category_names') or [])} |"
        )
    return "\n".join(lines)
