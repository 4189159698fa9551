"""Experiment: config overrides on cached teacher targets. variants separated by '|', each 'k=v;k=v'."""
import sys, time, dataclasses, numpy as np, keras, ast
sys.path.insert(0, ".")  # run from the repository root
from kdistill import pipeline, training, config as config_lib
task, seed = sys.argv[1], int(sys.argv[2])
variants = sys.argv[3].split("|")
cell = f"runs/validation1/{task}/n1000_seed{seed}"
import os
splits = pipeline.load_splits(f"../shared/data/{task}", 1000, seed, None, unlabelled=os.environ.get("EXTRA") or None, validation_rows=1000)
_, student_cfg, distill_cfg = config_lib.recipe("default")
distill_cfg = dataclasses.replace(distill_cfg, seed=seed)
teacher = pipeline.load_teacher(cell + "/teacher", splits)
tsplits, targets = pipeline.transfer_targets(teacher, cell + "/teacher", splits, distill_cfg)
tdev = targets["dev"]
for v in variants:
    t = time.time()
    changes = {k: ast.literal_eval(val) for k, val in (kv.split("=") for kv in v.split(";") if kv)}
    _, scfg, dcfg = config_lib.with_changes((config_lib.TeacherConfig(), student_cfg, distill_cfg), changes)
    student = training.build_student(teacher, tsplits, scfg, seed=seed)
    training.distill(teacher, student, tsplits, targets["unlabelled"], targets["labelled"], dcfg, verbose=0)
    out = student.predict_texts(splits.dev_texts)
    print(f"RESULT {task} seed={seed} {v or 'default'}: params {student.count_params():,} val acc {training.accuracy(out, splits.dev_labels):.4f} agreement {training.agreement(out, tdev):.4f} teacher {training.accuracy(tdev, splits.dev_labels):.4f} ({time.time()-t:.0f}s)", flush=True)
