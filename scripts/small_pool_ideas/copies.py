"""Experiment: other perturbed copies for a small pool."""
import sys, time, dataclasses, numpy as np, keras
sys.path.insert(0, ".")  # run from the repository root
from kdistill import pipeline, teacher as teacher_lib, training, config as config_lib, augment

task, seed = sys.argv[1], int(sys.argv[2])
variants = sys.argv[3].split(",")
cell = f"runs/validation1/{task}/n1000_seed{seed}"
splits = pipeline.load_splits(f"../shared/data/{task}", 1000, seed, None, validation_rows=1000)
teacher_cfg, student_cfg, distill_cfg = config_lib.recipe("default")
distill_cfg = dataclasses.replace(distill_cfg, seed=seed)
teacher = pipeline.load_teacher(cell + "/teacher", splits)
base_targets = pipeline.label(teacher, cell + "/teacher", splits)
runtime = base_targets["labelling"]["runtime"]
tdev = base_targets["dev"]
texts = [str(t) for t in np.concatenate([splits.labelled_texts, splits.unlabelled_texts])]
size = augment.target_size("auto", len(texts), augment.median_words(texts))
vocab = teacher.preprocessor.tokenizer.get_vocabulary()

def neighbours(k=10):
    emb = keras.ops.convert_to_numpy(teacher.backbone.token_embedding.embeddings) if not hasattr(teacher, "members") else keras.ops.convert_to_numpy(teacher.members[0].backbone.token_embedding.embeddings)
    words = [i for i, p in enumerate(vocab) if p.isalpha() and not p.startswith("[")]
    E = emb[words]; E = E / np.linalg.norm(E, axis=1, keepdims=True)
    index = {vocab[i]: j for j, i in enumerate(words)}
    pool_words = sorted({w for t in texts for w in t.lower().split() if w in index})
    rows = np.array([index[w] for w in pool_words])
    sims = E[rows] @ E.T
    sims[np.arange(len(rows)), rows] = -1
    top = np.argsort(-sims, axis=1)[:, :k]
    return {w: [vocab[words[j]] for j in top[n]] for n, w in enumerate(pool_words)}

def copies_nb(rng, nb, nb_prob, copies):
    corpus = [w for t in texts for w in t.split()]
    seen, out = set(texts), []
    for _ in range(copies):
        for t in texts:
            ws = t.split()
            kept = []
            for w in ws:
                p = rng.random()
                if p < 0.1: continue
                if p < 0.2: w = corpus[rng.integers(len(corpus))]
                elif p < 0.2 + nb_prob and w.lower() in nb: w = nb[w.lower()][rng.integers(len(nb[w.lower()]))]
                kept.append(w)
            if kept and rng.random() < 0.25:
                L = int(rng.integers(1, max(5, len(kept)//2) + 1)); s = int(rng.integers(0, max(len(kept)-L, 0)+1)); kept = kept[s:s+L]
            c = " ".join(kept)
            if c and c not in seen: seen.add(c); out.append(c)
    return out

def copies_mix(rng, n):
    seen, out = set(texts), []
    while len(out) < n:
        a, b = texts[rng.integers(len(texts))].split(), texts[rng.integers(len(texts))].split()
        c = " ".join(a[: max(1, len(a)//2)] + b[len(b)//2:])
        if c not in seen: seen.add(c); out.append(c)
    return out

copies = -(-size // len(texts)) - 1
for v in variants:
    t0 = time.time()
    rng = np.random.default_rng(seed)
    if v == "default":
        extra = augment.augment_texts(texts, copies, seed=seed)
    elif v.startswith("nb"):
        nb_prob = float(v[2:] or 0.2)
        extra = copies_nb(rng, neighbours(), nb_prob, copies)
    elif v == "mix":
        base = augment.augment_texts(texts, copies, seed=seed)
        extra = base[: len(base) // 2] + copies_mix(rng, len(base) - len(base) // 2)
    elif v == "base_plus_mix":
        base = augment.augment_texts(texts, copies, seed=seed)
        extra = base + copies_mix(rng, len(base) // 2)
    logits = teacher_lib.logits(teacher, extra, cache_dir=cell + "/teacher", runtime=runtime, verbose=False)
    tsplits = dataclasses.replace(splits, unlabelled_texts=np.concatenate([splits.unlabelled_texts, np.asarray(extra, dtype=object)]))
    unl = np.concatenate([base_targets["unlabelled"], logits])
    student = training.build_student(teacher, tsplits, student_cfg, seed=seed)
    training.distill(teacher, student, tsplits, unl, base_targets["labelled"], distill_cfg, verbose=0)
    out = student.predict_texts(splits.dev_texts)
    print(f"RESULT {task} seed={seed} {v}: {len(extra)} copies, val acc {training.accuracy(out, splits.dev_labels):.4f} agreement {training.agreement(out, tdev):.4f} teacher {training.accuracy(tdev, splits.dev_labels):.4f} ({time.time()-t0:.0f}s)", flush=True)
