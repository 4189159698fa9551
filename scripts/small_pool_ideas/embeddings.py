"""Experiment: student embeddings for pieces the transfer set never shows."""
import sys, time, json, dataclasses, numpy as np, keras
sys.path.insert(0, ".")  # run from the repository root
from kdistill import pipeline, teacher as teacher_lib, training, config as config_lib, student as student_lib
from kdistill.teacher_model import TeacherEnsemble

task, seed = sys.argv[1], int(sys.argv[2])
variants = sys.argv[3].split(",")
cell = f"runs/validation1/{task}/n1000_seed{seed}"
splits = pipeline.load_splits(f"../shared/data/{task}", 1000, seed, None, validation_rows=1000)
teacher_cfg, student_cfg, distill_cfg = config_lib.recipe("default")
distill_cfg = dataclasses.replace(distill_cfg, seed=seed)
teacher = pipeline.load_teacher(cell + "/teacher", splits)
tsplits, targets = pipeline.transfer_targets(teacher, cell + "/teacher", splits, distill_cfg)
tdev = targets["dev"]

def token_vectors(pieces, batch_size=2048):
    members = teacher.members if isinstance(teacher, TeacherEnsemble) else [teacher]
    tok = teacher.preprocessor.tokenizer
    pieces = np.asarray(pieces, np.int32)
    ids = np.stack([np.full_like(pieces, tok.cls_token_id), pieces, np.full_like(pieces, tok.sep_token_id)], 1)
    out = np.zeros((len(pieces), teacher.members[0].backbone.hidden_dim if isinstance(teacher, TeacherEnsemble) else teacher.backbone.hidden_dim), np.float32)
    for m in members:
        for s in range(0, len(ids), batch_size):
            b = ids[s:s+batch_size]
            seq = m.backbone({"token_ids": b, "padding_mask": np.ones_like(b), "segment_ids": np.zeros_like(b)})["sequence_output"]
            out[s:s+len(b)] += keras.ops.convert_to_numpy(keras.ops.mean(seq, axis=1))
    return out / len(members)

_m2v = {}
def m2v_table():
    if "t" not in _m2v:
        t = time.time()
        vocab = teacher.preprocessor.tokenizer.get_vocabulary()
        _m2v["t"] = token_vectors(np.arange(len(vocab)))
        print(f"m2v vectors in {time.time()-t:.0f}s", flush=True)
    return _m2v["t"]

results = {}
for v in variants:
    t = time.time()
    vocab_all = v.startswith("all")
    scfg = dataclasses.replace(student_cfg, vocabulary_size=0 if vocab_all else 7000)
    student = training.build_student(teacher, tsplits, scfg, seed=seed)
    if "m2v" in v:
        kept = student.tokenizer.kept_ids
        rows = np.asarray(kept if kept is not None else range(len(student.tokenizer.vocabulary)))
        student.set_embeddings(student_lib.projected_embeddings(m2v_table(), rows, scfg.embedding_dim, seed))
    if "frozen" in v:
        student.classifier.get_layer("token_embedding").trainable = False
    training.distill(teacher, student, tsplits, targets["unlabelled"], targets["labelled"], distill_cfg, verbose=0)
    logits = student.predict_texts(splits.dev_texts)
    acc = training.accuracy(logits, splits.dev_labels); agr = training.agreement(logits, tdev)
    results[v] = (acc, agr)
    print(f"RESULT {task} seed={seed} {v}: val acc {acc:.4f} agreement {agr:.4f} teacher {training.accuracy(tdev, splits.dev_labels):.4f} ({time.time()-t:.0f}s)", flush=True)
