"""Classifies texts with a trained student: label and class probabilities per text.

--model is a Keras student (folder or .keras file) or an exported .tflite model.
A MediaPipe model runs in MediaPipe Tasks' TextClassifier, the client it is made
for; the text-in and token-ids models run with LiteRT as an app would
(export.runtime). Texts come from the command line, from --input_file (one per
line; .tsv, .csv and .jsonl give their text column), or from stdin.

With --input_file the file is streamed: any size, in constant memory, a Keras student
through a float32 LiteRT model on every core (`export.bulk`), written as JSONL or TSV
to --output_file (with a progress bar) or stdout.

    python -m apps.predict --model=runs/demo/student "a gripping, funny film" "dull"
    echo "a gripping, funny film" | python -m apps.predict --model=runs/demo/student --json
    python -m apps.predict --model=runs/demo/student/student_int8.tflite "a gripping, funny film"
    python -m apps.predict --model=runs/demo/student/student_dynamic_mediapipe.tflite "a gripping, funny film"
    python -m apps.predict --model=runs/demo/student --input_file=texts.txt --output_file=labels.jsonl
"""

import json
import sys

import numpy as np
from absl import flags

from kdistill import cli, pipeline
from kdistill.errors import KdistillError
from kdistill.export import bulk as bulk_lib

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("model", "runs/demo/student", "A student folder or .keras file, or an exported .tflite.")
    flags.DEFINE_string("input_file", None, "A file of texts, streamed: .txt (one per line), or the text column "
                        "of a .tsv, .csv or .jsonl.")
    flags.DEFINE_string("output_file", None, "--input_file: where the records go (default stdout); written under a "
                        "temporary name and renamed when complete.")
    flags.DEFINE_enum("format", None, list(bulk_lib.FORMATS), "--input_file: jsonl (text, label, probabilities) or tsv "
                      "(label, a probability per class, text); default by --output_file's extension, else jsonl.")
    flags.DEFINE_string("encoding", "utf-8", "Text encoding of --input_file.")
    flags.DEFINE_bool("json", False, "Print one JSON object per text instead of a table.")


def main(argv):
    if FLAGS.input_file:
        if argv[1:]:
            raise KdistillError("pass texts as arguments or --input_file, not both")
        classifier = load_classifier(FLAGS.model, bulk=True)
        count = bulk_lib.classify_file(classifier, FLAGS.input_file, FLAGS.output_file, FLAGS.format, FLAGS.encoding)
        if FLAGS.output_file:
            print(f"wrote {count:,} records to {FLAGS.output_file}")
        return
    if FLAGS.output_file or FLAGS.format:
        raise KdistillError("--output_file and --format go with --input_file; pass the texts in a file")
    texts = read_texts(argv[1:])
    classifier = load_classifier(FLAGS.model)
    probs = classifier.predict_proba(texts)
    names = classifier.class_names
    for text, p in zip(texts, probs):
        label = names[int(p.argmax())]
        if FLAGS.json:
            record = {"text": text, "label": label, "probabilities": dict(zip(names, p.tolist()))}
            print(json.dumps(record, ensure_ascii=False))
        else:
            shown = "  ".join(f"{name}={q:.3f}" for name, q in zip(names, p))
            print(f"{label}\t{shown}\t{text}")


def load_classifier(path, bulk=False):
    """Something with `class_names` and `predict_proba(texts)`, chosen by the file's extension; with `bulk`, a
    Keras student as `export.bulk.BulkClassifier`."""
    if path.endswith(".tflite"):
        from kdistill.export import runtime  # LiteRT, TF Text and MediaPipe only load when needed

        classifier = runtime.TFLiteClassifier(path)
        if classifier.input_kind == "mediapipe":
            return runtime.MediaPipeClassifier(path)
        return classifier
    if bulk:
        return bulk_lib.BulkClassifier(pipeline.load_student(path))
    return _KerasClassifier(pipeline.load_student(path))


class _KerasClassifier:
    def __init__(self, student):
        self.student = student
        self.class_names = student.class_names

    def predict_proba(self, texts):
        logits = self.student.predict_texts(texts)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        return probs / probs.sum(-1, keepdims=True)


def read_texts(args):
    if args:
        return list(args)
    texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise KdistillError("no texts to classify; pass them as arguments, --input_file or on stdin")
    return texts


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
