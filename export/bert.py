"""BERT teachers as `.tflite` models (token ids in): priced on the same runtime as the student, and run as
the CPU's labeller.

The student's speed-up only means something against the teacher run the same
way: same LiteRT interpreter, same export mode, batch 1, one thread, the same
token window as the student. The teacher is exported without its tokenizer while
the student's text-in model tokenizes in the graph, so the speed-ups measured
against text-in students are conservative.

Example:

```python
path = export_bert(teacher, "runs/benchmark/minilm_dynamic.tflite", mode="dynamic")
latencies = bert_latencies_ms(path, teacher, dev_texts[:100], sequence_length=64)
forward = litert_labeller(teacher, "runs/demo/teacher/labeller.tflite")  # token-id batch -> logits
```

The labeller: on a CPU, the teacher labels the transfer set as a dynamic-range int8
LiteRT model (int8 weights, one scale per output channel; activations quantised per
call), which ai-edge-quantizer writes from the float32 export. On the 2-core machine,
SST-2 pool texts in length-bucketed batches of 32, tokenization included, took 0.72-0.89 ms each
against 2.1-2.2 ms in TensorFlow float32 (the three members of `make demo`'s teacher,
`scripts/labelling_speed.py`), and gave the float32 teacher's label on 99.66-99.77% of SST-2 dev
(2026-12-06).
The converter's own dynamic-range mode was faster (1.1 ms) but less faithful (99.43%).
Each run measures its labeller's agreement on its own dev set (`pipeline.label`).
"""

import numpy as np
import tensorflow as tf

from kdistill import io, side_by_side
from kdistill.export import latency, tflite

FEATURES = ("token_ids", "padding_mask", "segment_ids")


class BertModule(tf.Module):
    """A keras-hub BERT classifier behind one function: token ids, mask, segments in; probabilities (or, with
    `logits`, logits) out."""

    def __init__(self, classifier, logits=False):
        super().__init__()
        self.classifier = classifier
        self.logits = logits
        # tf.Module does not see a Keras 3 model's variables; the converter needs them to freeze.
        self.classifier_variables = [v.value for v in classifier.variables]
        specs = [tf.TensorSpec([None, None], tf.int32, name=name) for name in FEATURES]
        self.serve = tf.function(self._serve, input_signature=specs)

    def _serve(self, token_ids, padding_mask, segment_ids):
        features = {"token_ids": token_ids, "padding_mask": padding_mask, "segment_ids": segment_ids}
        logits = self.classifier(features, training=False)
        return {tflite.OUTPUT_NAME: logits if self.logits else tf.nn.softmax(logits, axis=-1)}


def export_bert(classifier, path, mode="dynamic"):
    """Writes `classifier` (a keras-hub BertTextClassifier) as `.tflite`; float32, float16 or dynamic."""
    if mode == "int8":
        raise ValueError("int8 teacher export needs calibration data; compare teachers in float32/float16/dynamic")
    flatbuffer, _ = tflite.convert_module(BertModule(classifier), mode)
    with io.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
    return path


def bert_latencies_ms(path, classifier, texts, sequence_length, num_threads=1):
    """Milliseconds per text, batch 1, of LiteRT's `invoke()` at the student's fixed `sequence_length`."""
    features = classifier.preprocessor(tf.constant(list(texts)))
    features = {name: np.asarray(features[name])[:, :sequence_length].astype(np.int32) for name in FEATURES}
    rows = [{name: value[i][None, :] for name, value in features.items()} for i in range(len(texts))]
    return latency.invoke_latencies_ms(path, rows, num_threads)


# Batches of 8 to 32 texts ran fastest through the int8 teacher on 2 cores (64 and more: 1.4 ms a text).
LABELLER_BATCH_SIZE = 32


def litert_labeller(classifier, path):
    """`forward(token-id batch) -> logits` of `classifier` (a keras-hub BertTextClassifier) as a dynamic-range
    int8 LiteRT model on every core; the model is written to `path` unless it is there already (the caller
    keys `path` by the weights)."""
    import os

    from ai_edge_litert.interpreter import Interpreter

    if not os.path.isfile(path):
        _write_int8_labeller(classifier, path)
    runner = Interpreter(model_path=path, num_threads=side_by_side.threads()).get_signature_runner()

    def forward(batch):
        (logits,) = runner(**{name: np.asarray(batch[name], np.int32) for name in FEATURES}).values()
        return logits

    return forward


def _write_int8_labeller(classifier, path):
    import contextlib
    import io as stdio
    import os
    import tempfile

    from ai_edge_quantizer import quantizer, recipe

    flatbuffer, _ = tflite.convert_module(BertModule(classifier, logits=True), "float32")
    with tempfile.TemporaryDirectory() as folder:
        float_path = os.path.join(folder, "float32.tflite")
        with open(float_path, "wb") as f:
            f.write(flatbuffer)
        int8 = quantizer.Quantizer(float_path)
        int8.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        # Its size report (stdout) and progress bars (stderr) say nothing to a user labelling texts.
        with contextlib.redirect_stdout(stdio.StringIO()), contextlib.redirect_stderr(stdio.StringIO()):
            quantized = int8.quantize().quantized_model
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with io.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(quantized)
