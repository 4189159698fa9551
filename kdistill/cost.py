"""The cost table: size, batch-1 latency and batch-64 throughput of the teachers and the student.

Parameters, `.tflite` size and batch-1 LiteRT latency (one thread) of the MiniLM
teacher actually used, of a BERT-base-sized teacher (random weights: only its
size matters) and of the student in each export mode, plus batch-64 throughput
in TensorFlow, all on the same dev sentences, and the ratios between them.

Then reading many texts (`throughput`), on one sample of the unlabelled pool: the
teacher labelling it in each runtime (`labelling_speed`), the student classifying it
in bulk (`export.bulk`) against its batch-1 LiteRT limit, and fastText, the peer
users pick for speed, trained on the same labels.

It prices a student and teacher that the benchmark's cells (`benchmark.py`)
trained; `benchmark_report.py` renders the table and checks the goals on it.

Example:

```python
table = cost("runs/benchmark/sst2/n1000_seed0/student", "runs/benchmark/sst2/n1000_seed0/teacher",
             "../shared/data/sst2", "runs/benchmark/cost")
table["ratios"]["teacher_minilm_speedup_dynamic_ids"]  # batch-1 speed-up over MiniLM, token ids in
```
"""

import os
import re
import tempfile
import time

import numpy as np

from kdistill import data, pipeline, report, teacher as teacher_lib
from kdistill.teacher_model import TeacherEnsemble

BERT_BASE = dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072)
# The export modes each model is priced in (`export.tflite` names them).
STUDENT_MODES = ("float32", "float16", "dynamic", "int8")
TEACHER_MODES = ("float32", "dynamic")
LATENCY_MODES = ("float32", "dynamic")  # the ablation table's latency columns (`benchmark.student_latency_ms`)
THROUGHPUT_TEXTS = 4096  # pool texts each teacher runtime labels, timed
# The students read the sample this many times (about 100,000 texts): long enough that start-up is amortised
# as it is on a real file.
STUDENT_PASSES = 25


def cost(student_dir, teacher_dir, dataset, work_dir, latency_rows=200, calibration_rows=500, num_labels=1000, seed=0):
    """The cost table on `dataset`'s dev sentences: size, batch-1 latency, batch-64 throughput; then `throughput`
    on its pool, fastText trained on the `num_labels` rows of `seed` (the cell's labels)."""
    from kdistill.export import bert, report, tflite

    os.makedirs(work_dir, exist_ok=True)
    student = pipeline.load_student(student_dir)
    splits = pipeline.load_splits(dataset, num_labels=len(student.class_names), max_unlabelled=calibration_rows)
    texts = list(splits.dev_texts[:latency_rows])
    window = student.tokenizer.sequence_length
    minilm = teacher_lib.load(teacher_dir)
    members = len(minilm.members) if isinstance(minilm, TeacherEnsemble) else 1
    # An ensemble's members are the same network: one is priced, and the ensemble costs `members` times it.
    minilm = minilm.members[0] if members > 1 else minilm
    bert_base = _bert_base_sized(minilm)
    result = {"dev_rows": len(texts), "sequence_length": window, "teacher_members": members}
    for name, model in (("teacher_minilm", minilm), ("teacher_bert_base", bert_base)):
        print(f"[cost] {name}: {model.count_params():,} parameters", flush=True)
        entry = {"params": int(model.count_params()), "throughput_b64": _teacher_throughput(model, splits.dev_texts)}
        for mode in TEACHER_MODES:
            path = bert.export_bert(model, os.path.join(work_dir, f"{name}_{mode}.tflite"), mode)
            latencies = bert.bert_latencies_ms(path, model, texts, window)
            entry[mode] = _latency_entry(path, latencies)
        result[name] = entry
    print(f"[cost] student: {student.count_params():,} parameters", flush=True)
    entry = {"params": int(student.count_params()), "throughput_b64": _student_throughput(student, splits.dev_texts)}
    for mode in STUDENT_MODES:
        for kind in ("text", "token_ids"):
            path = tflite.default_path(work_dir, mode, kind)
            tflite.export_student(student, path, mode, kind, calibration_texts=splits.unlabelled_texts)
            measured = report.parity(student, path, texts)
            entry[mode + ("_ids" if kind == "token_ids" else "")] = {
                key: measured[key] for key in ("latency_ms_p50", "latency_ms_p90", "agreement", "tokenizer_bytes")
            } | {"tflite_bytes": measured["size_bytes"]}
    result["student"] = entry
    result["ratios"] = _ratios(result)
    labelled = data.load(dataset, num_labels=num_labels, seed=seed)
    result["throughput"] = throughput(student, minilm, labelled, work_dir, entry["float32_ids"]["latency_ms_p50"])
    return result


def throughput(student, teacher, splits, work_dir, batch1_ms):
    """Texts per second (and per core) on one seeded sample of `splits`' pool: `teacher` (one model) labelling
    it in each runtime, the student in bulk beside its batch-1 limit (`batch1_ms`, one thread, times the cores),
    and fastText trained on `splits`' labelled rows."""
    from kdistill.export import bulk

    cores = os.cpu_count()
    sample = pool_sample(splits, THROUGHPUT_TEXTS)
    print(f"[cost] labelling {len(sample):,} pool texts in each teacher runtime", flush=True)
    labelling = labelling_speed(teacher, sample, list(splits.dev_texts), os.path.join(work_dir, "labeller"))
    many = sample * STUDENT_PASSES
    print(f"[cost] the student and fastText over {len(many):,} texts", flush=True)
    classifier = bulk.BulkClassifier(student)
    classifier.predict_proba(sample[:256])  # interpreter tensors allocated
    student_bulk = _texts_per_second(classifier.predict_proba, many, chunk=bulk.CHUNK_LINES)
    fasttext_speed, fasttext_accuracy = _fasttext(splits, many)
    return {
        "cpus": cores, "texts": len(sample), "student_texts": len(many),
        "teacher_labelling": labelling,
        "student_bulk": {"texts_per_s": student_bulk},
        "student_batch1_limit": {"texts_per_s": cores * 1000 / batch1_ms},
        "fasttext": {"texts_per_s": fasttext_speed, "dev_accuracy": fasttext_accuracy},
    }


def pool_sample(splits, size):
    """A seeded sample of `size` texts (or all) from `splits`' unlabelled pool."""
    pool = np.asarray(splits.unlabelled_texts, dtype=object)
    return list(pool[np.random.default_rng(0).choice(len(pool), min(size, len(pool)), replace=False)])


def labelling_speed(teacher, texts, dev_texts, cache_dir):
    """For each runtime in `teacher.RUNTIMES`: `teacher` (one model, not an ensemble) labelling `texts`, timed
    after a warm-up (the int8 model is written into `cache_dir` first, untimed), and how its labels on
    `dev_texts` compare with the first runtime's (float32)."""
    results, exact = {}, None
    for runtime in teacher_lib.RUNTIMES:
        predict = teacher_lib.predictor(teacher, runtime=runtime, cache_dir=cache_dir)
        predict(texts[:256])  # graphs traced, interpreter allocated
        speed = _texts_per_second(predict, texts)
        labels = predict(dev_texts)
        exact = labels if exact is None else exact
        results[runtime] = {
            "texts_per_s": speed, "ms_per_text": 1000 / speed,
            "dev_agreement": float(np.mean(labels.argmax(-1) == exact.argmax(-1))),
            "dev_max_probability_difference": float(np.abs(report.softmax(labels) - report.softmax(exact)).max()),
        }
    return results


def _texts_per_second(predict, texts, chunk=None):
    chunk = chunk or len(texts)
    start = time.perf_counter()
    for i in range(0, len(texts), chunk):
        predict(texts[i : i + chunk])
    return len(texts) / (time.perf_counter() - start)


def _fasttext(splits, texts):
    """fastText as its text-classification tutorial trains it (lower case, punctuation split off, word bigrams,
    learning rate 1.0, 25 epochs) on the labelled rows: texts per second over `texts`, and its dev accuracy."""
    import fasttext

    def line(text):  # fastText reads one line per text and splits it on whitespace
        return re.sub(r"([^\w\s])", r" \1 ", " ".join(str(text).split()).lower())

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "train.txt")
        with open(path, "w", encoding="utf-8") as f:
            for text, label in zip(splits.labelled_texts, splits.labelled_labels):
                f.write(f"__label__{label} {line(text)}\n")
        model = fasttext.train_supervised(path, lr=1.0, epoch=25, wordNgrams=2, seed=0, verbose=0,
                                          thread=os.cpu_count())

    def predict(batch):
        # `model.predict` goes through np.array(copy=False), which NumPy 2 refuses; the binding's own call does not.
        labels, _ = model.f.multilinePredict([line(t) for t in batch], 1, 0.0, "strict")
        return labels

    predict(texts[:256])
    speed = _texts_per_second(predict, texts)
    predicted = [labels[0] for labels in predict(list(splits.dev_texts))]
    accuracy = float(np.mean([p == f"__label__{label}" for p, label in zip(predicted, splits.dev_labels)]))
    return speed, accuracy


def _bert_base_sized(like):
    """A BERT-base-shaped classifier like `like` (same head and tokenizer), random weights: for timing only."""
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=like.backbone.vocabulary_size, max_sequence_length=512, **BERT_BASE
    )
    return type(like)(backbone, like.num_classes, preprocessor=like.preprocessor)


def _latency_entry(path, latencies):
    return {
        "tflite_bytes": os.path.getsize(path),
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p90": float(np.percentile(latencies, 90)),
    }


def _teacher_throughput(model, texts):
    """Sentences per second through `teacher.logits` (length-bucketed batches of 64), warm."""
    def label(batch):
        return teacher_lib.logits(model, batch, batch_size=64, verbose=False)

    label(texts[:128])
    return _texts_per_second(label, texts)


def _student_throughput(student, texts):
    def predict(batch):
        return student.predict_texts(batch, batch_size=64)

    predict(texts[:128])
    return _texts_per_second(predict, texts)


def _ratios(result):
    student = result["student"]
    ratios = {}
    for teacher in ("teacher_minilm", "teacher_bert_base"):
        ratios[f"{teacher}_params_per_student_param"] = result[teacher]["params"] / student["params"]
        for mode in TEACHER_MODES:
            for kind in ("", "_ids"):
                ratios[f"{teacher}_speedup_{mode}{kind}"] = (
                    result[teacher][mode]["latency_ms_p50"] / student[mode + kind]["latency_ms_p50"]
                )
        ratios[f"{teacher}_throughput_speedup_b64"] = student["throughput_b64"] / result[teacher]["throughput_b64"]
    return ratios
