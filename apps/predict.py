"""Classifies texts with a trained student: label and class probabilities per text.

Texts come from the command line, from --input_file (one per line), or from stdin.

    python -m apps.predict --model=runs/demo/student "a gripping, funny film" "dull"
    echo "a gripping, funny film" | python -m apps.predict --model=runs/demo/student --json
"""

import json
import sys

import numpy as np
from absl import flags

from kdistill import cli, pipeline
from kdistill.errors import KdistillError

flags.DEFINE_string("model", "runs/demo/student", "A student folder or .keras file.")
flags.DEFINE_string("input_file", None, "A text file, one text per line.")
flags.DEFINE_bool("json", False, "Print one JSON object per text instead of a table.")
FLAGS = flags.FLAGS


def main(argv):
    texts = read_texts(argv[1:])
    student = pipeline.load_student(FLAGS.model)
    logits = student.predict_texts(texts)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    for text, p in zip(texts, probs):
        label = student.class_names[int(p.argmax())]
        if FLAGS.json:
            record = {"text": text, "label": label, "probabilities": dict(zip(student.class_names, p.tolist()))}
            print(json.dumps(record, ensure_ascii=False))
        else:
            shown = "  ".join(f"{name}={q:.3f}" for name, q in zip(student.class_names, p))
            print(f"{label}\t{shown}\t{text}")


def read_texts(args):
    if args:
        return list(args)
    if FLAGS.input_file:
        try:
            with open(FLAGS.input_file, encoding="utf-8") as f:
                texts = [line.rstrip("\n") for line in f if line.strip()]
        except OSError as e:
            raise KdistillError(f"{FLAGS.input_file}: cannot read ({e.strerror}); check the path") from None
    else:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise KdistillError("no texts to classify; pass them as arguments, --input_file or on stdin")
    return texts


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
