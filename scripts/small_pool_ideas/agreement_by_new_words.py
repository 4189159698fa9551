import sys, re, numpy as np, keras
sys.path.insert(0, ".")  # run from the repository root
from kdistill import pipeline, teacher as teacher_lib
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
def words(t): return set(WORD.findall(str(t).lower()))
for task in sys.argv[1].split(","):
    cell = f"runs/validation1/{task}/n1000_seed0"
    splits = pipeline.load_splits(f"../shared/data/{task}", 1000, 0, None, validation_rows=1000)
    teacher = pipeline.load_teacher(cell + "/teacher", splits)
    student = keras.models.load_model(cell + "/student/student.keras")
    texts = list(splits.dev_texts); y = np.asarray(splits.dev_labels)
    tp = teacher_lib.logits(teacher, texts, cache_dir=cell + "/teacher", verbose=False).argmax(1)
    sp = student.predict_texts(texts).argmax(1)
    known = set().union(*(words(t) for t in np.concatenate([splits.labelled_texts, splits.unlabelled_texts])))
    new = np.array([len(words(t) - known) for t in texts])
    for name, m in [("all known", new == 0), ("1+ new word", new >= 1)]:
        print(f"{task} {name}: n={m.sum()} ({m.mean():.0%}) teacher={(tp[m]==y[m]).mean():.3f} student={(sp[m]==y[m]).mean():.3f} agree={(tp[m]==sp[m]).mean():.3f}")
