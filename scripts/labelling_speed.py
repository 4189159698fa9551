"""Measures each way the teacher can label (`teacher.RUNTIMES`) on this machine: milliseconds per text, and how
often each gives the float32 teacher's top label. The measurement behind `teacher.labelling_runtime`.

    python scripts/labelling_speed.py --teacher_dir=runs/demo/teacher --dataset=../shared/data/sst2

Times every member of the teacher (one folder, or an ensemble's members) over a seeded sample of the dataset's
unlabelled texts, tokenization included, after a warm-up (the int8 model is written first, untimed), and compares
the labels on the whole dev split. Prints one JSON line per member and runtime.
"""

import json
import os

import checkout  # first: kdistill from this checkout
from kdistill import cost, data, teacher as teacher_lib
from kdistill.teacher_model import TeacherEnsemble


def main():
    args = checkout.arguments(__doc__, teacher_dir=None, dataset="../shared/data/sst2",
                              texts=(4096, "unlabelled texts timed per member and runtime"))
    teacher = teacher_lib.load(args.teacher_dir)
    members = teacher.members if isinstance(teacher, TeacherEnsemble) else [teacher]
    splits = data.load(args.dataset, num_labels=teacher.num_classes, seed=0)
    timed = cost.pool_sample(splits, args.texts)
    int8_models = os.path.join(args.teacher_dir, "labelling_speed")  # each member's written once, keyed by weights
    for index, member in enumerate(members):
        measured = cost.labelling_speed(member, timed, list(splits.dev_texts), int8_models)
        for runtime, entry in measured.items():
            print(json.dumps({"member": index, "runtime": runtime, "texts": len(timed), "cpus": os.cpu_count(),
                              **{k: round(v, 4) for k, v in entry.items()}}), flush=True)


if __name__ == "__main__":
    main()
