import sys, numpy as np, keras
sys.path.insert(0, ".")  # run from the repository root
from kdistill import pipeline, teacher as teacher_lib, augment
task = sys.argv[1] if len(sys.argv) > 1 else "cr"
cell = f"runs/validation1/{task}/n1000_seed0"
splits = pipeline.load_splits(f"../shared/data/{task}", 1000, 0, None, validation_rows=1000)
teacher = pipeline.load_teacher(cell + "/teacher", splits)
student = keras.models.load_model(cell + "/student/student.keras")
texts = list(splits.dev_texts); y = np.asarray(splits.dev_labels)
tl = teacher_lib.logits(teacher, texts, verbose=False)
sl = student.predict_texts(texts)
tp, sp = tl.argmax(1), sl.argmax(1)
print("teacher", (tp==y).mean(), "student", (sp==y).mean(), "agree", (tp==sp).mean())
# train fit: agreement on transfer texts
tr = list(splits.unlabelled_texts)[:1500]
tt = teacher_lib.logits(teacher, tr, verbose=False).argmax(1)
st = student.predict_texts(tr).argmax(1)
print("agreement on pool texts (seen in training):", (tt==st).mean())
ids = keras.ops.convert_to_numpy(student.tokenizer(np.asarray(texts, dtype=object)))
length = (ids != 0).sum(1)
unk_id = 1  # check
vocab = student.tokenizer.vocabulary
print("vocab size", len(vocab), "first", vocab[:3])
# pieces seen in transfer set
pool_ids = keras.ops.convert_to_numpy(student.tokenizer(np.asarray(list(splits.unlabelled_texts)+list(splits.labelled_texts), dtype=object)))
seen = set(np.unique(pool_ids).tolist())
unseen = np.array([sum(1 for t in row if t != 0 and t not in seen) for row in ids])
unk = np.array([sum(1 for t in row if t == 1) for row in ids])
print("mean length", length.mean(), "truncated(64)", (length >= 64).mean())
def report(name, groups):
    for g, m in groups:
        if m.sum():
            print(f"  {name} {g}: n={m.sum()} teacher={(tp[m]==y[m]).mean():.3f} student={(sp[m]==y[m]).mean():.3f} agree={(tp[m]==sp[m]).mean():.3f}")
q = np.quantile(length, [0.25, 0.5, 0.75])
report("len", [("<=q1", length<=q[0]), ("q1-q2", (length>q[0])&(length<=q[1])), ("q2-q3", (length>q[1])&(length<=q[2])), (">q3", length>q[2])])
report("unseen", [("0", unseen==0), ("1", unseen==1), ("2+", unseen>=2)])
report("unk", [("0", unk==0), ("1+", unk>=1)])
tprob = keras.ops.convert_to_numpy(keras.ops.softmax(tl)).max(1)
report("teacher conf", [("<0.7", tprob<0.7), ("0.7-0.9", (tprob>=0.7)&(tprob<0.9)), (">=0.9", tprob>=0.9)])
# examples of disagreement
dis = np.where(tp != sp)[0][:15]
for i in dis: print(y[i], tp[i], sp[i], texts[i][:150])
