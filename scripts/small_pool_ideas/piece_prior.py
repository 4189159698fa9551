"""Experiment: a frozen per-piece prior channel: the teacher's log-probabilities of each piece read alone."""
import sys, time, dataclasses, numpy as np, keras
sys.path.insert(0, ".")  # run from the repository root
from kdistill import pipeline, teacher as teacher_lib, training, config as config_lib, student as student_lib
from kdistill.student import ZeroPadding, MaskedGlobalMaxPooling1D, MaskedGlobalAveragePooling1D

task, seed = sys.argv[1], int(sys.argv[2])
variants = sys.argv[3].split(",")
cell = f"runs/validation1/{task}/n1000_seed{seed}"
splits = pipeline.load_splits(f"../shared/data/{task}", 1000, seed, None, validation_rows=1000)
teacher_cfg, student_cfg, distill_cfg = config_lib.recipe("default")
distill_cfg = dataclasses.replace(distill_cfg, seed=seed)
teacher = pipeline.load_teacher(cell + "/teacher", splits)
tsplits, targets = pipeline.transfer_targets(teacher, cell + "/teacher", splits, distill_cfg)
tdev = targets["dev"]
vocab = teacher.preprocessor.tokenizer.get_vocabulary()
runtime = targets["labelling"]["runtime"]
t0 = time.time()
piece_texts = [p[2:] if p.startswith("##") else p for p in vocab]
piece_logits = teacher_lib.logits(teacher, piece_texts, cache_dir=cell + "/teacher", runtime=runtime, verbose=False)
logp = piece_logits - np.log(np.exp(piece_logits).sum(1, keepdims=True))
print(f"piece priors in {time.time()-t0:.0f}s", flush=True)

def network(vocab_rows, prior, num_classes, scale, trainable_prior=False, seq=64, dim=64, filters=128, ks=(2,3,4,5), dropout=0.3):
    ids = keras.Input(shape=(seq,), dtype="int32", name="token_ids")
    e = keras.layers.Embedding(len(vocab_rows), dim, name="token_embedding")(ids)
    p = keras.layers.Embedding(len(vocab_rows), prior.shape[1], name="piece_prior", trainable=trainable_prior)(ids)
    x = keras.layers.Concatenate()([e, p])
    x = ZeroPadding()(x, ids)
    x = keras.layers.SpatialDropout1D(dropout / 2)(x)
    pooled = []
    for w in ks:
        h = keras.layers.Conv1D(filters, w, padding="same", activation="relu")(x)
        pooled += [MaskedGlobalMaxPooling1D()(h, ids), MaskedGlobalAveragePooling1D()(h, ids)]
    x = keras.layers.Dropout(dropout)(keras.layers.Concatenate()(pooled))
    model = keras.Model(ids, keras.layers.Dense(num_classes)(x))
    return model

for v in variants:
    t = time.time()
    student = training.build_student(teacher, tsplits, student_cfg, seed=seed)
    if v != "default":
        scale = float(v.split("_")[1])
        kept = student.tokenizer.kept_ids
        rows = np.asarray(kept if kept is not None else range(len(vocab)))
        # centred log-probabilities of each kept row, scaled to `scale` std
        pr = logp[rows] - logp[rows].mean(0)
        pr = pr * (scale / (pr.std() + 1e-9)); pr[0] = 0
        emb = student.classifier.get_layer("token_embedding").get_weights()[0]
        net = network(rows, pr, splits.num_classes, scale, trainable_prior=v.startswith("priort"))
        net.get_layer("token_embedding").set_weights([emb]); net.get_layer("piece_prior").set_weights([pr.astype(np.float32)])
        student.classifier = net
    training.distill(teacher, student, tsplits, targets["unlabelled"], targets["labelled"], distill_cfg, verbose=0)
    out = student.predict_texts(splits.dev_texts)
    print(f"RESULT {task} seed={seed} {v}: val acc {training.accuracy(out, splits.dev_labels):.4f} agreement {training.agreement(out, tdev):.4f} teacher {training.accuracy(tdev, splits.dev_labels):.4f} ({time.time()-t:.0f}s)", flush=True)
    probe = ["avoid this product at all costs .", "has all sorts of problems"]
    print("  probe", keras.ops.convert_to_numpy(keras.ops.softmax(student.predict_texts(probe)))[:, -1].round(2))
