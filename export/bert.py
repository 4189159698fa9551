"""BERT teachers as `.tflite` models (token ids in), to price them on the same runtime as the student.

The student's speed-up only means something against the teacher run the same
way: same LiteRT interpreter, same export mode, batch 1, one thread, the same
token window as the student. The teacher is exported without its tokenizer while
the student's text-in model tokenizes in the graph, so the speed-ups measured
against text-in students are conservative.

Example:

```python
path = export_bert(teacher, "runs/benchmark/minilm_dynamic.tflite", mode="dynamic")
latencies = bert_latencies_ms(path, teacher, dev_texts[:100], sequence_length=64)
```
"""

import numpy as np
import tensorflow as tf

from kdistill import io
from kdistill.export import latency, tflite

FEATURES = ("token_ids", "padding_mask", "segment_ids")


class BertModule(tf.Module):
    """A keras-hub BERT classifier behind one function: token ids, mask, segments in; probabilities out."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier
        # tf.Module does not see a Keras 3 model's variables; the converter needs them to freeze.
        self.classifier_variables = [v.value for v in classifier.variables]
        specs = [tf.TensorSpec([None, None], tf.int32, name=name) for name in FEATURES]
        self.serve = tf.function(self._serve, input_signature=specs)

    def _serve(self, token_ids, padding_mask, segment_ids):
        features = {"token_ids": token_ids, "padding_mask": padding_mask, "segment_ids": segment_ids}
        return {tflite.OUTPUT_NAME: tf.nn.softmax(self.classifier(features, training=False), axis=-1)}


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
