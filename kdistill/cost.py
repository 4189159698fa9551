"""The cost table: size, batch-1 latency and batch-64 throughput of the teachers and the student.

Parameters, `.tflite` size and batch-1 LiteRT latency (one thread) of the MiniLM
teacher actually used, of a BERT-base-sized teacher (random weights: only its
size matters) and of the student in each export mode, plus batch-64 throughput
in TensorFlow, all on the same dev sentences, and the ratios between them.

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
import time

import numpy as np

from kdistill import pipeline, teacher as teacher_lib

BERT_BASE = dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072)
# The export modes each model is priced in (`export.tflite` names them).
STUDENT_MODES = ("float32", "float16", "dynamic", "int8")
TEACHER_MODES = ("float32", "dynamic")
LATENCY_MODES = ("float32", "dynamic")  # the ablation table's latency columns (`benchmark.student_latency_ms`)


def cost(student_dir, teacher_dir, dataset, work_dir, latency_rows=200, calibration_rows=500):
    """The cost table on `dataset`'s dev sentences: size, batch-1 latency, batch-64 throughput."""
    from kdistill.export import bert, report, tflite

    os.makedirs(work_dir, exist_ok=True)
    student = pipeline.load_student(student_dir)
    splits = pipeline.load_splits(dataset, num_labels=len(student.class_names), max_unlabelled=calibration_rows)
    texts = list(splits.dev_texts[:latency_rows])
    window = student.tokenizer.sequence_length
    minilm = teacher_lib.load(teacher_dir)
    bert_base = _bert_base_sized(minilm)
    result = {"dev_rows": len(texts), "sequence_length": window}
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
    return result


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
    teacher_lib.logits(model, texts[:128], batch_size=64, verbose=False)
    start = time.perf_counter()
    teacher_lib.logits(model, texts, batch_size=64, verbose=False)
    return len(texts) / (time.perf_counter() - start)


def _student_throughput(student, texts):
    student.predict_texts(texts[:128], batch_size=64)
    start = time.perf_counter()
    student.predict_texts(texts, batch_size=64)
    return len(texts) / (time.perf_counter() - start)


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
