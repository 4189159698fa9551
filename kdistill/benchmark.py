"""The benchmark behind `docs/RESULTS.md`: label efficiency and cost, measured in one run.

Quality: for each task, number of labels N and seed, the dev accuracy of the
fine-tuned teacher, of the labels-only student (same network, same labels, no
teacher) and of the distilled student, and the student's agreement with the
teacher. Each cell is cached as JSON under the run folder with the config that
made it, so reruns only compute what changed; teachers and their logits are
reused through `pipeline`.

Cost: parameters, `.tflite` size and batch-1 LiteRT latency (one thread) of the
MiniLM teacher actually used, of a BERT-base-sized teacher (random weights: only
its size matters) and of the student in each export mode, plus batch-64
throughput in TensorFlow, all on the same dev sentences.

Example:

```python
rows = [quality_cell("sst2", "../shared/data/sst2", 100, 0, "runs/benchmark", configs)]
write_results({"quality": rows, "cost": {}}, "docs")
```
"""

import dataclasses
import datetime
import hashlib
import os
import platform
import tempfile
import time

import keras
import numpy as np

from kdistill import io, pipeline, teacher as teacher_lib, training

BERT_BASE = dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072)
STUDENT_MODES = ("float32", "float16", "dynamic", "int8")
TEACHER_MODES = ("float32", "dynamic")
LATENCY_MODES = ("float32", "dynamic")  # the ablation table's latency columns


@dataclasses.dataclass
class Configs:
    teacher: pipeline.TeacherConfig
    student: training.StudentConfig
    distill: training.DistillConfig
    max_unlabelled: int = None


# Variants of the default recipe, each changing one thing, run on one cell so that
# RESULTS.md can say what each idea is worth. They share the cell's teacher and logits.
# A variant's `task` or `num_labels` picks another cell than the ablation task's largest N.
ABLATIONS = {
    "alpha_0.5": {"alpha": 0.5},  # the label term weighted as much as the teacher's
    "alpha_0": {"alpha": 0.0},  # the teacher's logits alone
    "temperature_1": {"temperature": 1.0},
    "temperature_4": {"temperature": 4.0},
    "temperature_4_ag_news": {"temperature": 4.0, "task": "ag_news"},
    "mse": {"distillation_loss": "mse"},  # MSE on logits instead of softened KL
    "random_embeddings": {"init_embeddings": "random"},  # no PCA init from the teacher's embeddings
    "full_vocabulary": {"vocabulary_size": 0},  # all 30,522 pieces, no pruning
    "2_epochs": {"epochs": 2},
    "vocabulary_8000": {"vocabulary_size": 8000},
    "max_pooling": {"pooling": "max"},  # max over time alone, as in Chia et al. and Kim (2014)
    "max_pooling_ag_news": {"pooling": "max", "task": "ag_news"},
    "separable": {"separable": True},  # depthwise-separable convolutions: ~3x fewer multiply-adds
    "filters_256_vocabulary_5000": {"filters": 256, "vocabulary_size": 5000},  # wider convs, same parameter budget
    # Cheaper convolutions for the batch-1 speed-up: fewer and narrower kernels.
    "kernels_2_3_filters_96": {"kernel_sizes": (2, 3), "filters": 96},
    "kernels_2_3_filters_96_ag_news": {"kernel_sizes": (2, 3), "filters": 96, "task": "ag_news"},
    "kernels_1_2_3": {"kernel_sizes": (1, 2, 3)},
    "kernels_2_3_filters_64": {"kernel_sizes": (2, 3), "filters": 64},
    "kernels_2_3_filters_64_ag_news": {"kernel_sizes": (2, 3), "filters": 64, "task": "ag_news"},
    "kernels_3": {"kernel_sizes": (3,)},
    "kernels_3_ag_news": {"kernel_sizes": (3,), "task": "ag_news"},
    "teacher_cls_pooling": {"teacher_pooling": "cls"},  # keras-hub's [CLS] head: its own teacher and logits
    "teacher_cls_pooling_n100": {"teacher_pooling": "cls", "num_labels": 100},  # where the head matters most
    # 10% of the N labels held out; fine-tuning stops at the epoch that scores them best.
    "teacher_early_stopping": {"teacher_validation_fraction": 0.1},
    "teacher_early_stopping_ag_news": {"teacher_validation_fraction": 0.1, "task": "ag_news"},
    # All N labels, two epochs: is it the shorter fine-tuning that early stopping's gain comes from?
    "teacher_2_epochs": {"teacher_epochs": 2, "teacher_min_steps": 0},
    "teacher_2_epochs_ag_news": {"teacher_epochs": 2, "teacher_min_steps": 0, "task": "ag_news"},
    # Perturbed copies (augment.py) labelled by the teacher: SST-2's 67k texts plus 45k copies
    # (a perturbation often leaves a short phrase unchanged), AG News' 4,000 plus 16,000.
    "augment_134k": {"augment_to": 134_000},
    "augment_270k": {"augment_to": 270_000},  # four perturbed copies of each text
    "augment_20k_ag_news": {"augment_to": 20_000, "task": "ag_news"},
    # AG News' 4,000 transfer texts make 128 updates in 4 epochs; 16 epochs make 512.
    "16_epochs_ag_news": {"epochs": 16, "task": "ag_news"},
    # 13% of AG News texts are longer than 64 pieces (the teacher reads 128).
    "sequence_128_ag_news": {"sequence_length": 128, "task": "ag_news"},
    # Issue #12. The teacher's 384-number sentence vector as a second target (distiller.py).
    "sentence_vectors": {"vector_weight": 1.0},
    "sentence_vectors_ag_news": {"vector_weight": 1.0, "task": "ag_news"},
    # A short fine-tune on the gold labels after distillation (Ye et al. 2021).
    "gold_fine_tune": {"fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4},
    "gold_fine_tune_ag_news": {"fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4, "task": "ag_news"},
    # The gap against the size of the unlabelled pool: SST-2's 66k texts cut to a seeded sample.
    "pool_3k": {"transfer_pool": 3_000},
    "pool_10k": {"transfer_pool": 10_000},
    "pool_30k": {"transfer_pool": 30_000},
    "pool_3k_sentence_vectors": {"transfer_pool": 3_000, "vector_weight": 1.0},
    "pool_3k_augment_20k": {"transfer_pool": 3_000, "augment_to": 20_000},
    "pool_10k_augment_20k": {"transfer_pool": 10_000, "augment_to": 20_000},
    # 3,000 texts and the 1,000 labelled make 128 updates in 4 epochs; the full pool makes 2,100.
    "pool_3k_min_steps": {"transfer_pool": 3_000, "min_steps": 2_100},
    # Issue #13. WordPiece over the 7,000 kept pieces alone: a 4x smaller text-in tokenizer.
    "pruned_wordpiece": {"wordpiece": "pruned"},
    "pruned_wordpiece_ag_news": {"wordpiece": "pruned", "task": "ag_news"},
}
# The ones `apps.benchmark` runs unless told otherwise: what trades accuracy for the batch-1
# speed-up, and the ideas aimed at the teacher gap. Earlier RESULTS.md runs measured alpha, MSE,
# random embeddings, the full vocabulary and the [CLS] teacher head; `--ablations` reruns any of them.
DEFAULT_ABLATIONS = (
    "temperature_4", "kernels_2_3_filters_96", "kernels_2_3_filters_64", "kernels_3", "augment_134k",
    "kernels_2_3_filters_96_ag_news", "kernels_2_3_filters_64_ag_news", "kernels_3_ag_news", "augment_20k_ag_news",
    "16_epochs_ag_news", "sequence_128_ag_news", "teacher_early_stopping", "teacher_early_stopping_ag_news",
    "teacher_2_epochs", "teacher_2_epochs_ag_news",
)


# The DistillConfig fields the labels-only baseline reads. A variant that changes none of them,
# nor the teacher, student or data, has the default cell's baseline and does not train it again.
BASELINE_DISTILL_FIELDS = ("seed", "batch_size", "learning_rate")


def quality_cell(task, dataset, num_labels, seed, run_dir, configs, variant=None, overrides=None):
    """One cell of the grid (or an ablation `variant` of it, with config `overrides`); returns its row."""
    teacher_dir = os.path.join(_cell_dir(run_dir, task, num_labels, seed), "teacher")
    default_configs = configs
    default_teacher = configs.teacher
    configs = _override(configs, overrides or {})
    cell_dir = _cell_dir(run_dir, task, num_labels, seed, variant)
    if configs.teacher != default_teacher:  # a teacher variant trains and labels with its own teacher
        teacher_dir = os.path.join(cell_dir, "teacher")
    distill_config = dataclasses.replace(configs.distill, seed=seed)
    key = repr((dataset, num_labels, seed, configs.max_unlabelled, pipeline.cache_fields(configs.teacher),
                pipeline.cache_fields(configs.student), pipeline.cache_fields(distill_config)))
    cell_path = os.path.join(cell_dir, "cell.json")
    name = f"{task} N={num_labels} seed={seed}" + (f" [{variant}]" if variant else "")
    if os.path.exists(cell_path) and io.read_json(cell_path).get("key") == key:
        print(f"[benchmark] {name}: cached", flush=True)
        return io.read_json(cell_path)["row"]
    print(f"[benchmark] {name}", flush=True)
    start = time.time()
    splits = pipeline.load_splits(dataset, num_labels, seed, configs.max_unlabelled)
    teacher, teacher_metrics = pipeline.train_or_reuse_teacher(splits, teacher_dir, configs.teacher, seed)
    transfer_splits, targets = pipeline.transfer_targets(teacher, teacher_dir, splits, distill_config)
    if variant and _same_baseline(configs, default_configs):
        default_row = quality_cell(task, dataset, num_labels, seed, run_dir, default_configs)
        baseline = {"student_dev_acc": default_row["labels_only_acc"]}
    else:
        _, baseline = pipeline.train_labels_only(
            teacher, splits, os.path.join(cell_dir, "labels_only"), configs.student, distill_config, targets["dev"]
        )
    _, distilled = pipeline.distill_student(
        teacher, targets, transfer_splits, os.path.join(cell_dir, "student"), configs.student, distill_config
    )
    row = {
        "task": task,
        "num_labels": num_labels,
        "seed": seed,
        "num_unlabelled": len(splits.unlabelled_texts),
        "dev_rows": len(splits.dev_texts),
        "teacher_acc": teacher_metrics["teacher_dev_acc"],
        "labels_only_acc": baseline["student_dev_acc"],
        "student_acc": distilled["student_dev_acc"],
        "agreement": distilled["agreement_with_teacher"],
        "seconds": round(time.time() - start, 1),
    }
    if variant:
        row["variant"] = variant
    io.write_json({"key": key, "row": row}, cell_path)
    return row


def _same_baseline(a, b):
    return (a.teacher, a.student, a.max_unlabelled) == (b.teacher, b.student, b.max_unlabelled) and all(
        getattr(a.distill, field) == getattr(b.distill, field) for field in BASELINE_DISTILL_FIELDS)


def _cell_dir(run_dir, task, num_labels, seed, variant=None):
    cell_dir = os.path.join(run_dir, task, f"n{num_labels}_seed{seed}")
    return os.path.join(cell_dir, "variants", _slug(variant)) if variant else cell_dir


def ablation_cells(specs, task, num_labels, seeds, run_dir, configs, names, latency_rows=200):
    """The `ABLATIONS` in `names`, each on `task` at `num_labels` unless it names its own task or N, once per seed.

    `specs` maps task names to datasets; a variant whose task is not among them is
    skipped. Returns the variants' rows and the default recipe's rows they are
    compared with. Every row carries its student's batch-1 latency
    (`student_latency_ms`): some ideas trade accuracy for speed.
    """
    rows, defaults, texts = [], {}, {}
    for name, overrides in ABLATIONS.items():
        overrides = dict(overrides)
        at_task, at_n = overrides.pop("task", task), overrides.pop("num_labels", num_labels)
        if name not in names or at_task not in specs:
            continue
        for seed in seeds:
            cell = (at_task, at_n, seed)
            if at_task not in texts:
                dev = pipeline.load_splits(specs[at_task], at_n, seed, max_unlabelled=0).dev_texts
                texts[at_task] = list(dev[:latency_rows])
            if cell not in defaults:
                defaults[cell] = quality_cell(at_task, specs[at_task], at_n, seed, run_dir, configs)
                defaults[cell]["latency_ms_p50"] = student_latency_ms(
                    os.path.join(_cell_dir(run_dir, *cell), "student"), texts[at_task])
            row = quality_cell(at_task, specs[at_task], at_n, seed, run_dir, configs, variant=name, overrides=overrides)
            row["latency_ms_p50"] = student_latency_ms(
                os.path.join(_cell_dir(run_dir, *cell, name), "student"), texts[at_task])
            rows.append(row)
    return rows, list(defaults.values())


def student_latency_ms(student_dir, texts):
    """Median batch-1 LiteRT latency (ms, token ids in, one thread) of the saved student, per mode in
    `LATENCY_MODES`; measured once per saved model and timed texts, and cached beside it."""
    from export import latency, runtime, tflite

    model_path = os.path.join(student_dir, pipeline.STUDENT_FILE)
    timed = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    key = f"{os.path.getmtime(model_path)}:{os.path.getsize(model_path)}:{timed}"
    cache_path = os.path.join(student_dir, "latency.json")
    if os.path.exists(cache_path) and io.read_json(cache_path).get("key") == key:
        return io.read_json(cache_path)["p50"]
    student = pipeline.load_student(student_dir)
    p50 = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in LATENCY_MODES:
            path = tflite.export_student(student, os.path.join(tmp, f"{mode}.tflite"), mode, kind="token_ids")
            rows = runtime.TFLiteClassifier(path).rows(texts)
            p50[mode] = float(np.median(latency.invoke_latencies_ms(path, rows)))
    io.write_json({"key": key, "p50": p50}, cache_path)
    return p50


def _override(configs, overrides):
    """`configs` with some fields replaced; keys `teacher_<field>` are TeacherConfig fields."""
    teacher = {k[len("teacher_"):]: v for k, v in overrides.items()
               if k.startswith("teacher_") and k[len("teacher_"):] in pipeline.TeacherConfig.__dataclass_fields__}
    student = {k: v for k, v in overrides.items() if k in training.StudentConfig.__dataclass_fields__}
    distill = {k: v for k, v in overrides.items() if k in training.DistillConfig.__dataclass_fields__}
    unknown = set(overrides) - {"teacher_" + k for k in teacher} - set(student) - set(distill)
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)}")
    return dataclasses.replace(
        configs, teacher=dataclasses.replace(configs.teacher, **teacher),
        student=dataclasses.replace(configs.student, **student),
        distill=dataclasses.replace(configs.distill, **distill),
    )


def _slug(text):
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")[:60]


def cost(student_dir, teacher_dir, dataset, work_dir, latency_rows=200, calibration_rows=500):
    """The cost table on `dataset`'s dev sentences: size, batch-1 latency, batch-64 throughput."""
    from export import bert, report, tflite

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


def summarise(rows):
    """Mean and spread over seeds for each (task, N)."""
    groups = {}
    for row in rows:
        groups.setdefault((row["task"], row["num_labels"]), []).append(row)
    summary = []
    for (task, n), cells in sorted(groups.items()):
        entry = {"task": task, "num_labels": n, "seeds": len(cells)}
        for key in ("teacher_acc", "labels_only_acc", "student_acc", "agreement"):
            values = np.array([c[key] for c in cells])
            entry[key] = float(values.mean())
            entry[key + "_std"] = float(values.std())
        summary.append(entry)
    return summary


def write_results(results, docs_dir, command, notes=""):
    """`results.json`, the plots and `RESULTS.md` in `docs_dir`."""
    os.makedirs(docs_dir, exist_ok=True)
    results = dict(results, command=command, machine=_machine(), date=datetime.date.today().isoformat())
    io.write_json(results, os.path.join(docs_dir, "results.json"))
    summary = summarise(results["quality"])
    plots = [_plot_label_efficiency(summary, docs_dir)]
    if results.get("cost"):
        plots.append(_plot_cost(results["cost"], docs_dir))
    with io.atomic_path(os.path.join(docs_dir, "RESULTS.md")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(_markdown(results, summary, plots, notes, docs_dir))


def _machine():
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}, keras {keras.__version__}"


def _plot_label_efficiency(summary, docs_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({s["task"] for s in summary})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        cells = [s for s in summary if s["task"] == task]
        n = [c["num_labels"] for c in cells]
        for key, label, style in (
            ("teacher_acc", "teacher (MiniLM-L6)", "o-"),
            ("student_acc", "distilled student", "s-"),
            ("labels_only_acc", "labels-only student", "^--"),
        ):
            ax.errorbar(n, [100 * c[key] for c in cells], yerr=[100 * c[key + "_std"] for c in cells],
                        fmt=style, capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_xticks(n, [str(x) for x in n])
        ax.set_xlabel("labelled examples N")
        ax.set_ylabel("dev accuracy (%)")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(docs_dir, "label_efficiency.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return os.path.basename(path)


def _plot_cost(cost, docs_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["teacher_bert_base", "teacher_minilm", "student"]
    labels = ["BERT-base-sized", "MiniLM-L6 teacher", "student"]
    latency = [cost[n]["dynamic"]["latency_ms_p50"] for n in names]
    params = [cost[n]["params"] for n in names]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, values, title in ((axes[0], latency, "batch-1 latency, dynamic-range .tflite (ms, log)"),
                              (axes[1], params, "parameters (log)")):
        bars = ax.barh(labels, values, color=["#888", "#4a7", "#27c"])
        ax.set_xscale("log")
        ax.set_title(title)
        for bar, value in zip(bars, values):
            ax.text(value, bar.get_y() + bar.get_height() / 2, f" {value:,.3g}", va="center")
    fig.tight_layout()
    path = os.path.join(docs_dir, "cost.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return os.path.basename(path)


def _markdown(results, summary, plots, notes, docs_dir):
    lines = [
        "# kdistill results",
        "",
        f"Generated by `{results['command']}` on {results['date']} ({results['machine']}). "
        "Do not edit by hand: rerun the command.",
        "",
        "## Label efficiency (dev accuracy)",
        "",
        "Teacher: MiniLM-L6 fine-tuned on the N labels. Labels-only: the student trained on the N "
        "labels alone (same network, vocabulary and embedding initialisation). Distilled: the "
        "student trained on the N labels plus the teacher's logits on the rest of train "
        "(unlabelled). Mean ± standard deviation over seeds.",
        "",
        "| task | N | seeds | teacher | labels-only | distilled | distilled - labels-only | distilled - teacher | agreement |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summary:
        lines.append(
            f"| {s['task']} | {s['num_labels']} | {s['seeds']} | {_pm(s, 'teacher_acc')} | "
            f"{_pm(s, 'labels_only_acc')} | {_pm(s, 'student_acc')} | "
            f"{100 * (s['student_acc'] - s['labels_only_acc']):+.1f} | "
            f"{100 * (s['student_acc'] - s['teacher_acc']):+.1f} | {100 * s['agreement']:.1f}% |"
        )
    lines += ["", f"![label efficiency]({plots[0]})", "", "Every cell:", "",
              "| task | N | seed | unlabelled | teacher | labels-only | distilled | agreement | seconds |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(results["quality"], key=lambda r: (r["task"], r["num_labels"], r["seed"])):
        lines.append(
            f"| {r['task']} | {r['num_labels']} | {r['seed']} | {r['num_unlabelled']:,} | "
            f"{100 * r['teacher_acc']:.2f} | {100 * r['labels_only_acc']:.2f} | {100 * r['student_acc']:.2f} | "
            f"{100 * r['agreement']:.1f}% | {r['seconds']:.0f} |"
        )
    if results.get("ablations"):
        lines += _ablation_markdown(results) + [
            "",
            "Earlier runs of this table (older recipes, see the git history of this file) measured alpha, MSE, "
            "random embeddings, the full vocabulary, separable convolutions and the [CLS] teacher head; "
            "`--ablations=<name>,...` reruns any variant in `kdistill.benchmark.ABLATIONS`.",
            "",
            "A wider sweep, [SWEEP.md](SWEEP.md) (`scripts/student_sweep.py`), distils dozens of student variants "
            "from the same cached N=1000 teachers on both tasks and both seeds: dropout, epochs, learning rate, "
            "batch size, alpha, temperature, MSE, augmentation, embedding width, vocabulary, filters, kernel "
            "widths, a hidden layer, dilated residual and stacked convolutions. Its first lines say how close "
            "the best of them come to the teacher.",
            "",
            "Not measured yet: part-of-speech-guided word replacement (Tang et al., 2019; augment.py draws "
            "replacement words from the corpus instead).",
        ]
    pool_lines, pool_plot = _pool_section(results, docs_dir)
    lines += pool_lines
    cost = results.get("cost")
    if cost:
        lines += _cost_markdown(cost) + ["", f"![cost]({plots[1]})"]
    lines += ["", "## Goals", ""] + goals_table(results)
    if notes:
        lines += ["", notes.strip()]
    return "\n".join(lines) + "\n"


def _default_cells(results):
    """The default recipe's rows, by (task, N, seed), that ablation variants are compared with."""
    return {(r["task"], r["num_labels"], r["seed"]): r for r in results["quality"] + results.get("ablation_defaults", [])}


def _ablation_groups(results):
    """The ablation rows by (variant, task, N), seeds in order, each with the default rows of the same seeds."""
    defaults = _default_cells(results)
    groups = {}
    for r in results.get("ablations", []):
        groups.setdefault((r["variant"], r["task"], r["num_labels"]), []).append(r)
    return [
        (variant, sorted(group, key=lambda r: r["seed"]),
         [defaults.get((r["task"], r["num_labels"], r["seed"])) for r in sorted(group, key=lambda r: r["seed"])])
        for (variant, _, _), group in groups.items()
    ]


def _mean_delta(rows, bases):
    """Mean over seeds of the distilled accuracy minus the default's (points), or None without defaults."""
    pairs = [(r, b) for r, b in zip(rows, bases) if b]
    return 100 * float(np.mean([r["student_acc"] - b["student_acc"] for r, b in pairs])) if pairs else None


def _ablation_markdown(results):
    groups = _ablation_groups(results)
    seeds = sorted({r["seed"] for r in results["ablations"]})
    lines = [
        "",
        "## What each idea is worth",
        "",
        f"One change at a time to the default recipe, seed{'s' if len(seeds) > 1 else ''} "
        f"{' and '.join(map(str, seeds))} (values per seed, separated by /), each beside "
        "the default recipe's cell of the same task, N and seed; every variant shares that cell's teacher and its logits "
        "unless it changes the teacher. On this 2-core CPU, TensorFlow is not bit-deterministic across "
        "processes and identical settings have been seen to differ by up to 2 points, so read differences "
        "under about 1.5 points in one seed as noise.",
        "",
        "Latency: the variant's student (first seed), token ids in, LiteRT batch-1 median over dev sentences, one "
        "thread (as in the cost table); the speed-up is over the MiniLM teacher in the same mode.",
        "",
        "| variant | change | task | N | teacher | distilled | vs default | labels-only | agreement | "
        "float32 µs (speed-up) | dynamic µs (speed-up) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    teacher_ms = {mode: results["cost"]["teacher_minilm"][mode]["latency_ms_p50"]
                  for mode in LATENCY_MODES} if results.get("cost") else {}

    def latency_cells(latency):
        return " | ".join(
            f"{1000 * latency[m]:.1f}" + (f" ({teacher_ms[m] / latency[m]:.0f}x)" if m in teacher_ms else "")
            if latency and m in latency else "" for m in LATENCY_MODES
        )

    def per_seed(rows, key):
        return " / ".join(f"{100 * r[key]:.2f}" for r in rows)

    def measured(rows):
        return (f"{per_seed(rows, 'teacher_acc')} | {per_seed(rows, 'student_acc')}", per_seed(rows, "labels_only_acc"),
                f"{100 * np.mean([r['agreement'] for r in rows]):.1f}% | {latency_cells(rows[0].get('latency_ms_p50'))}")

    shown = set()
    order = list(dict.fromkeys((rows[0]["task"], rows[0]["num_labels"]) for _, rows, _ in groups))
    for variant, rows, bases in sorted(groups, key=lambda g: order.index((g[1][0]["task"], g[1][0]["num_labels"]))):
        task, n = rows[0]["task"], rows[0]["num_labels"]
        known = [b for b in bases if b]
        cell = (task, n, tuple(b["seed"] for b in known))
        if known and cell not in shown:
            shown.add(cell)
            accuracies, labels_only, rest = measured(known)
            lines.append(f"| default recipe | | {task} | {n} | {accuracies} | | {labels_only} | {rest} |")
        change = ", ".join(f"{k}={v}" for k, v in ABLATIONS.get(variant, {}).items() if k not in ("num_labels", "task"))
        deltas = [f"{100 * (r['student_acc'] - b['student_acc']):+.2f}" for r, b in zip(rows, bases) if b]
        delta = " / ".join(deltas) + (f" (mean {_mean_delta(rows, bases):+.2f})" if len(deltas) > 1 else "")
        accuracies, labels_only, rest = measured(rows)
        lines.append(f"| {variant} | `{change}` | {task} | {n} | {accuracies} | {delta} | {labels_only} | {rest} |")
    return lines


def pool_table(results):
    """The gap to the teacher against the unlabelled pool's size: `{(task, recipe): [row per pool size]}`.

    Cut pools come from the ablations that set `transfer_pool`; the recipe is the rest of their
    change ("default" for none). The full pool is the default cell, or the ablation with the same
    recipe and no cut. Each row holds means over the seeds measured.
    """
    defaults = _default_cells(results)
    cells = {}
    for row in results.get("ablations", []):
        change = {k: v for k, v in ABLATIONS.get(row["variant"], {}).items() if k not in ("task", "num_labels")}
        pool = change.pop("transfer_pool", None)
        recipe = ", ".join(f"{k}={v}" for k, v in change.items()) or "default"
        cells.setdefault((row["task"], row["num_labels"], recipe, pool), []).append(row)
    for (task, n, recipe, pool), rows in list(cells.items()):
        if pool is not None and recipe == "default":
            full = [defaults[(task, n, r["seed"])] for r in rows if (task, n, r["seed"]) in defaults]
            cells.setdefault((task, n, "default", None), full)
    table = {}
    for (task, n, recipe, pool), rows in cells.items():
        if not any(p is not None for (t, m, r, p) in cells if (t, m, r) == (task, n, recipe)) or not rows:
            continue
        size = pool if pool is not None else rows[0]["num_unlabelled"]
        table.setdefault((task, recipe), []).append({
            "pool": size, "num_labels": n, "seeds": len(rows),
            "teacher_acc": float(np.mean([r["teacher_acc"] for r in rows])),
            "student_acc": float(np.mean([r["student_acc"] for r in rows])),
            "labels_only_acc": float(np.mean([r["labels_only_acc"] for r in rows])),
        })
    return {key: sorted(rows, key=lambda r: r["pool"]) for key, rows in table.items()}


def _pool_section(results, docs_dir):
    table = pool_table(results)
    if not table:
        return [], None
    lines = [
        "",
        "## The gap against the size of the unlabelled pool",
        "",
        "The same teacher distils students from a seeded sample of its task's unlabelled texts (`transfer_pool`), "
        "the full pool being the default cell. Means over the seeds measured; the gap is the teacher's dev accuracy "
        "minus the student's.",
        "",
        "| task | recipe | unlabelled pool | seeds | teacher | distilled | gap to teacher | distilled - labels-only |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (task, recipe), rows in sorted(table.items()):
        for r in rows:
            lines.append(
                f"| {task} | {recipe} | {r['pool']:,} | {r['seeds']} | {100 * r['teacher_acc']:.2f} | "
                f"{100 * r['student_acc']:.2f} | {100 * (r['teacher_acc'] - r['student_acc']):.2f} | "
                f"{100 * (r['student_acc'] - r['labels_only_acc']):+.2f} |"
            )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (task, recipe), rows in sorted(table.items()):
        ax.plot([r["pool"] for r in rows], [100 * (r["teacher_acc"] - r["student_acc"]) for r in rows], "o-",
                label=f"{task}: {recipe}")
    ax.axhline(1.0, color="C2", ls="--", lw=1, label="1-point goal")
    ax.set_xscale("log")
    pools = sorted({r["pool"] for rows in table.values() for r in rows})
    ax.set_xticks(pools, [f"{p / 1000:.0f}k" for p in pools])
    ax.minorticks_off()
    ax.set_xlabel("unlabelled texts distilled from (log)")
    ax.set_ylabel("teacher minus student, dev accuracy (points)")
    ax.set_title("Student-teacher gap against the unlabelled pool")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(docs_dir, "pool_gap.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return lines + ["", f"![gap against the pool]({os.path.basename(path)})"], path


def _cost_markdown(cost):
    lines = [
        "",
        "## Cost",
        "",
        f"Batch-1 latency: LiteRT, one thread, the time of `invoke()` alone (as LiteRT's `benchmark_model` "
        f"counts it), median and p90 over {cost['dev_rows']} dev sentences, "
        f"every model at the student's {cost['sequence_length']}-token window. Teachers take token ids "
        "(no tokenizer in the graph); student rows marked *text* tokenize in the graph, *ids* take token "
        "ids like the teachers. Throughput: sentences/s in TensorFlow at batch 64 (teachers length-bucketed).",
        "",
        "| model | mode | params | .tflite bytes | p50 ms | p90 ms | throughput b64 (/s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label in (("teacher_bert_base", "BERT-base-sized (random weights)"), ("teacher_minilm", "MiniLM-L6 teacher")):
        for mode in TEACHER_MODES:
            e = cost[name][mode]
            lines.append(f"| {label} | {mode} | {cost[name]['params']:,} | {e['tflite_bytes']:,} | "
                         f"{e['latency_ms_p50']:.2f} | {e['latency_ms_p90']:.2f} | {cost[name]['throughput_b64']:,.0f} |")
    student = cost["student"]
    for mode in STUDENT_MODES:
        for kind, label in (("", "text"), ("_ids", "ids")):
            e = student[mode + kind]
            lines.append(f"| student ({label}) | {mode} | {student['params']:,} | {e['tflite_bytes']:,} | "
                         f"{e['latency_ms_p50']:.3f} | {e['latency_ms_p90']:.3f} | {student['throughput_b64']:,.0f} |")
    r = cost["ratios"]
    lines += [
        "",
        "| ratio | MiniLM-L6 teacher | BERT-base-sized |",
        "| --- | ---: | ---: |",
        f"| parameters / student's | {r['teacher_minilm_params_per_student_param']:.1f}x | "
        f"{r['teacher_bert_base_params_per_student_param']:.1f}x |",
    ]
    for mode in TEACHER_MODES:
        for kind, label in (("", "text-in"), ("_ids", "ids-in")):
            lines.append(f"| batch-1 speed-up, {mode}, student {label} | {r[f'teacher_minilm_speedup_{mode}{kind}']:.0f}x | "
                         f"{r[f'teacher_bert_base_speedup_{mode}{kind}']:.0f}x |")
    lines.append(f"| batch-64 throughput speed-up (TensorFlow) | {r['teacher_minilm_throughput_speedup_b64']:.0f}x | "
                 f"{r['teacher_bert_base_throughput_speedup_b64']:.0f}x |")
    return lines


def _pm(summary, key):
    return f"{100 * summary[key]:.2f} ± {100 * summary[key + '_std']:.2f}"


# Figures measured outside kdistill that the goals compare with: data, with where they come from.
PEER_FIGURES = {
    "setfit": {
        "method": "SetFit, the same MiniLM-L6 backbone and the same 1,000 labels, seed 0",
        "dev_accuracy": {"sst2": 0.818, "ag_news": 0.879},
        "source": "the goals of issue #12 (the benchmark issue before it measured SetFit on these splits)",
    },
}


def goals_table(results):
    """The issue's goals, each with what was measured and whether it is met, as Markdown rows."""
    summary = {(s["task"], s["num_labels"]): s for s in summarise(results["quality"])}
    rows = []

    def goal(text, measured, met):
        rows.append(f"| {text} | {measured} | {'yes' if met else '**no**'} |")

    def per_seed(task, key):
        cells = sorted((r for r in results["quality"] if (r["task"], r["num_labels"]) == (task, 1000)),
                       key=lambda r: r["seed"])
        return "; ".join(f"seed {r['seed']}: {100 * r[key]:.2f}" for r in cells)

    # SetFit's figures are seed 0; the goals compare means over seeds and show each seed too.
    for task, bar in PEER_FIGURES["setfit"]["dev_accuracy"].items():
        s = summary.get((task, 1000))
        if s:
            goal(f"{task} N=1000: teacher >= SetFit ({100 * bar:.1f}%, seed 0)",
                 f"mean {100 * s['teacher_acc']:.2f}% ({per_seed(task, 'teacher_acc')})", s["teacher_acc"] >= bar)
            gap = 100 * (s["teacher_acc"] - s["student_acc"])
            goal(f"{task} N=1000: student within 1.0 point of teacher",
                 f"{gap:.2f} points behind (student {per_seed(task, 'student_acc')})", gap <= 1.0)
    best = max((s["student_acc"] - s["teacher_acc"] for s in summary.values()), default=None)
    if best is not None:
        goal("student >= teacher in at least one cell", f"best cell {100 * best:+.2f} points", best >= 0)
    s = summary.get(("sst2", 1000))
    if s:
        gain = 100 * (s["student_acc"] - s["labels_only_acc"])
        goal("sst2 N=1000: distilled >= labels-only + 8 points", f"{gain:+.2f} points", gain >= 8)
    cost = results.get("cost")
    if cost:
        params = cost["student"]["params"]
        goal("student parameters <= 582k (1/39 of MiniLM)", f"{params:,}", params <= 582_000)
        for kind, label in (("int8_ids", "token-ids"), ("int8", "text-in")):
            size = cost["student"][kind]["tflite_bytes"]
            tokenizer = cost["student"][kind].get("tokenizer_bytes", 0)
            goal(f"int8 .tflite <= 1 MB ({label} model)",
                 f"{size:,} bytes" + (f", of which tokenizer {tokenizer:,}" if tokenizer else ""), size <= 1_000_000)
        r = cost["ratios"]
        for teacher, bar, label in (("teacher_minilm", 300, "MiniLM"), ("teacher_bert_base", 1000, "BERT-base")):
            for mode in TEACHER_MODES:
                speedup = r[f"{teacher}_speedup_{mode}_ids"]
                goal(f"batch-1 speed-up over {label} >= {bar}x ({mode}, token ids in on both sides)",
                     f"{speedup:.0f}x (student text-in: {r[f'{teacher}_speedup_{mode}']:.0f}x)"
                     + ("" if speedup >= bar else _fastest_variant(results, teacher, mode, bar)), speedup >= bar)
    return ["| goal | measured | met |", "| --- | --- | --- |"] + rows


def _fastest_variant(results, teacher, mode, bar):
    """Per task, the most accurate ablation student (mean over its seeds) that reaches `bar`, and what it gave up."""
    teacher_ms = results["cost"][teacher][mode]["latency_ms_p50"]
    fast = sorted(
        ((variant, rows, _mean_delta(rows, bases)) for variant, rows, bases in _ablation_groups(results)
         if mode in rows[0].get("latency_ms_p50", {}) and teacher_ms / rows[0]["latency_ms_p50"][mode] >= bar
         and _mean_delta(rows, bases) is not None),
        key=lambda g: (g[1][0]["task"], -g[2]),
    )
    clauses = []
    for task in dict.fromkeys(rows[0]["task"] for _, rows, _ in fast):
        variant, rows, delta = next(g for g in fast if g[1][0]["task"] == task)  # the most accurate fast enough
        seeds = f"{len(rows)} seed{'s' if len(rows) > 1 else ''}"
        clauses.append(f"{variant}: {teacher_ms / rows[0]['latency_ms_p50'][mode]:.0f}x at "
                       f"{delta:+.2f} points on {task} ({seeds})")
    return "; met by ablation students: " + "; ".join(clauses) if clauses else ""
