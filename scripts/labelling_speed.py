"""Measures each way the teacher can label (`teacher.RUNTIMES`) on this machine: milliseconds per text, and how
often each gives the float32 teacher's top label. The measurement behind `teacher.labelling_runtime`.

    python scripts/labelling_speed.py --teacher_dir=runs/demo/teacher --dataset=../shared/data/sst2

Times every member of the teacher (one folder, or an ensemble's members) over a seeded sample of the dataset's
unlabelled texts, tokenization included, after a warm-up (the int8 model is written first, untimed), and compares
the labels on the whole dev split. Prints one JSON line per member and runtime.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from kdistill import data, report, teacher as teacher_lib  # noqa: E402
from kdistill.teacher_model import TeacherEnsemble  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher_dir", required=True)
    parser.add_argument("--dataset", default="../shared/data/sst2")
    parser.add_argument("--texts", type=int, default=4096, help="unlabelled texts timed per member and runtime")
    args = parser.parse_args()
    teacher = teacher_lib.load(args.teacher_dir)
    members = teacher.members if isinstance(teacher, TeacherEnsemble) else [teacher]
    splits = data.load(args.dataset, num_labels=teacher.num_classes, seed=0)
    pool = np.asarray(splits.unlabelled_texts, dtype=object)
    timed = list(pool[np.random.default_rng(0).choice(len(pool), min(args.texts, len(pool)), replace=False)])
    dev = list(splits.dev_texts)
    for index, member in enumerate(members):
        exact = None
        for runtime in teacher_lib.RUNTIMES:
            with_cache = os.path.join(args.teacher_dir, "labelling_speed")  # where the int8 model is written once
            predict = teacher_lib.predictor(member, runtime=runtime, cache_dir=with_cache)
            predict(timed[:256])  # warm-up: graphs traced, interpreter allocated
            start = time.perf_counter()
            predict(timed)
            ms = 1000 * (time.perf_counter() - start) / len(timed)
            labels = predict(dev)
            exact = labels if exact is None else exact
            print(json.dumps({
                "member": index, "runtime": runtime, "ms_per_text": round(ms, 3), "texts": len(timed),
                "dev_agreement_with_float32": float(np.mean(labels.argmax(-1) == exact.argmax(-1))),
                "dev_max_probability_difference": float(np.abs(report.softmax(labels) - report.softmax(exact)).max()),
                "cpus": os.cpu_count(),
            }), flush=True)


if __name__ == "__main__":
    main()
