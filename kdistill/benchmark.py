"""The benchmark's cells: the quality grid and the ablations behind `docs/RESULTS.md`.

Quality: for each task, number of labels N and seed, the dev accuracy of the
fine-tuned teacher, of the labels-only student (same network, same labels, no
teacher) and of the distilled student, and the student's agreement with the
teacher. Each cell is cached as JSON under the run folder with the config that
made it, so reruns only compute what changed; teachers and their logits are
reused through `pipeline`.

Ablations: the variants of `ablations.ABLATIONS`, each a cell of its own under
the default cell's `variants/` folder, sharing its teacher and logits, with its
student's batch-1 latency.

The configs and the variants live in `ablations.py`, the cost table in `cost.py`,
and `benchmark_report.py` turns the rows into `RESULTS.md`; `apps.benchmark`
runs them all.

Example:

```python
configs = ablations.Configs(config.TeacherConfig(), config.StudentConfig(), config.DistillConfig())
rows = [quality_cell("sst2", "../shared/data/sst2", 100, 0, "runs/benchmark", configs)]
benchmark_report.write_results({"quality": rows}, "docs", command="python -m apps.benchmark")
```
"""

import dataclasses
import datetime
import os
import tempfile
import time

import numpy as np

from kdistill import ablations, augment, benchmark_report, config, cost as cost_lib, data, io, keys, pipeline
from kdistill import teacher as teacher_lib
from kdistill.errors import KdistillError


# The DistillConfig fields the labels-only baseline reads. A variant that changes none of them,
# nor the teacher, student or data, has the default cell's baseline and does not train it again.
BASELINE_DISTILL_FIELDS = ("seed", "batch_size", "learning_rate")


def quality_cell(task, dataset, num_labels, seed, run_dir, configs, variant=None, overrides=None):
    """One cell of the grid (or an ablation `variant` of it, with config `overrides`); returns its row."""
    teacher_dir = os.path.join(_cell_dir(run_dir, task, num_labels, seed), "teacher")
    default_configs = configs
    default_teacher = configs.teacher
    configs = ablations.override(configs, overrides or {})
    cell_dir = _cell_dir(run_dir, task, num_labels, seed, variant)
    member_dirs = None
    if configs.teacher != default_teacher:  # a teacher variant trains and labels with its own teacher
        if dataclasses.replace(configs.teacher, ensemble=1) == default_teacher:
            # An ensemble of the default teacher and more seeds: its first member is the cell's own
            # teacher, and the others are shared by every ensemble size.
            member_dirs = [teacher_dir] + [os.path.join(os.path.dirname(teacher_dir), "ensemble_members", f"member-{k}")
                                           for k in range(1, configs.teacher.ensemble)]
        teacher_dir = os.path.join(cell_dir, "teacher")
    distill_config = dataclasses.replace(configs.distill, seed=seed)
    key = cell_key(dataset, num_labels, seed, configs)
    cell_path = os.path.join(cell_dir, "cell.json")
    name = f"{task} N={num_labels} seed={seed}" + (f" [{variant}]" if variant else "")
    if os.path.exists(cell_path) and io.read_json(cell_path).get("key") == key:
        print(f"[benchmark] {name}: cached", flush=True)
        return io.read_json(cell_path)["row"]
    print(f"[benchmark] {name}", flush=True)
    start = time.time()
    stopwatch = Stopwatch()
    splits = pipeline.load_splits(dataset, num_labels, seed, configs.max_unlabelled,
                                  validation_rows=configs.validation_rows)
    teacher, teacher_metrics = pipeline.train_teacher(
        splits, teacher_dir, configs.teacher, seed, member_dirs=member_dirs,
        labelling_runtime=teacher_lib.labelling_runtime(configs.teacher_runtime))
    stopwatch.lap("teacher")
    transfer_splits, targets = pipeline.transfer_targets(teacher, teacher_dir, splits, distill_config,
                                                         configs.teacher_runtime)
    stopwatch.lap("teacher_labels")
    if variant and _same_baseline(configs, default_configs):
        default_row = quality_cell(task, dataset, num_labels, seed, run_dir, default_configs)
        baseline = {"student_dev_acc": default_row["labels_only_acc"]}
    else:
        _, baseline = pipeline.train_labels_only(
            teacher, splits, os.path.join(cell_dir, "labels_only"), configs.student, distill_config, targets["dev"]
        )
    stopwatch.lap("labels_only")
    _, distilled = pipeline.distill_student(
        teacher, targets, transfer_splits, os.path.join(cell_dir, "student"), configs.student, distill_config
    )
    stopwatch.lap("distillation")
    row = {
        "task": task,
        "num_labels": num_labels,
        "seed": seed,
        "num_unlabelled": len(splits.unlabelled_texts),
        "dev_rows": len(splits.dev_texts),
        "teacher_acc": teacher_metrics["teacher_dev_acc"],
        **({"teacher_member_accs": teacher_metrics["teacher_member_dev_acc"]}
           if "teacher_member_dev_acc" in teacher_metrics else {}),
        "labels_only_acc": baseline["student_dev_acc"],
        "student_acc": distilled["student_dev_acc"],
        "agreement": distilled["agreement_with_teacher"],
        "labelling": targets["labelling"],
        "seconds": round(time.time() - start, 1),
        # Zero where the cache answered: a reused teacher, cached logits, the default's baseline.
        "phase_seconds": stopwatch.laps,
        # Cells restored from results.json were timed in other sessions, not always on the same CPU.
        "machine": benchmark_report.machine(),
    }
    if variant:
        row["variant"] = variant
    row["key"] = key  # kept in results.json with the row: `restore_cells` reuses it in a later session
    io.write_json({"key": key, "row": row}, cell_path)
    return row


def cell_key(dataset, num_labels, seed, configs):
    """What a cell's row depends on: its data (the content, not where it lives), configs and the rules that derive
    settings from the data."""
    # The rules are code, not config fields: their constants join the key.
    rules = (config.UPDATES_PER_CLASS, augment.AUTO_MIN_TEXTS, augment.AUTO_MAX_TEXTS, augment.SHORT_TEXT_WORDS,
             augment.PHRASE_WORDS, config.PIECES_KEPT,
             teacher_lib.labelling_runtime(configs.teacher_runtime), teacher_lib.MIN_LABELLER_AGREEMENT)
    identity = data.identity(dataset)
    distill = dataclasses.replace(configs.distill, seed=seed)
    if distill.temperature == config.AUTO:
        # The rule's outcome joins the key, not the word "auto": a cell the rule leaves at the temperature it had
        # keeps its key and figures, and a change of the rule moves only the cells whose temperature it moves.
        if identity not in _CLASS_COUNTS:  # read once a dataset, not once a cell
            _CLASS_COUNTS[identity] = data.num_classes(dataset)
        distill = dataclasses.replace(distill, temperature=distill.distill_temperature(_CLASS_COUNTS[identity]))
    return keys.of(identity, num_labels, seed, configs.max_unlabelled, configs.validation_rows,
                   configs.teacher, configs.student, distill, rules)


_CLASS_COUNTS = {}


def restore_cells(results_path, run_dir):
    """Writes back into `run_dir` the cells that `results_path` (a results.json this benchmark wrote) holds and
    `run_dir` lacks; returns how many. A cell's key says what made it, so a later session (whose `run_dir` starts
    empty) recomputes only the cells whose configs, rules or data changed. The models are not kept: what needs a
    cell's student or teacher (the cost table, a variant sharing the cell's teacher) trains them again."""
    if not os.path.isfile(results_path):
        return 0
    results = io.read_json(results_path)
    restored = 0
    # The ablations' defaults first: they are quality cells too, with their students' latency, which a restored
    # cell cannot measure again.
    for row in results.get("ablation_defaults", []) + results.get("quality", []) + results.get("ablations", []):
        path = os.path.join(_cell_dir(run_dir, row["task"], row["num_labels"], row["seed"], row.get("variant")),
                            "cell.json")
        if "key" in row and not os.path.exists(path):
            io.write_json({"key": row["key"], "row": row}, path)
            restored += 1
    return restored


def cost_table(task, dataset, num_labels, seed, run_dir, configs, results_paths, remeasure=False, latency_rows=200):
    """The cost table (`kdistill.cost.cost`) of the student and teachers of one default cell: the one in
    `results_paths` (results.json files) when one timed this cell (`kept_cost`) and `remeasure` is not set,
    else measured now, with the
    cell's models trained again when the run folder lacks them (a restored cell keeps no models)."""
    key = cell_key(dataset, num_labels, seed, configs)
    kept = None if remeasure else kept_cost(results_paths, key)
    if kept:
        print(f"[benchmark] cost: kept the table measured on {kept['date']} ({kept['machine']}), whose {task} "
              f"N={num_labels} seed={seed} cell is unchanged; --remeasure_cost measures it again", flush=True)
        return kept
    cell = _cell_dir(run_dir, task, num_labels, seed)
    if not os.path.isdir(os.path.join(cell, "student")):
        if os.path.exists(os.path.join(cell, "cell.json")):
            os.remove(os.path.join(cell, "cell.json"))
        quality_cell(task, dataset, num_labels, seed, run_dir, configs)
    cost = cost_lib.cost(os.path.join(cell, "student"), os.path.join(cell, "teacher"), dataset,
                         os.path.join(run_dir, "cost"), latency_rows=latency_rows)
    return measured_cost(cost, key, f"{task} N={num_labels} seed {seed}")


def measured_cost(cost, key, cell):
    """The cost table `kdistill.cost.cost` measured now, stamped with the key and name of the cell whose student and
    teachers it timed, the date and the machine: what `kept_cost` checks, and what the document says of it."""
    return dict(cost, cell_key=key, cell=cell, date=datetime.date.today().isoformat(),
                machine=benchmark_report.machine())


def kept_cost(results_paths, key):
    """The cost table of the first of `results_paths` (results.json files) that timed the cell of `key` (the same
    student and teacher recipe, data and seed), else None. It times the machine as much as the models: it keeps
    the date and machine it was measured on, and the document says them."""
    for path in results_paths:
        cost = io.read_json(path).get("cost") if os.path.isfile(path) else None
        if cost and cost.get("cell_key") == key:
            return cost
    return None


class Stopwatch:
    """Seconds spent in each named stretch of work, in the order they ended.

    Example: `stopwatch = Stopwatch()`, work, `stopwatch.lap("teacher")`, more work,
    `stopwatch.lap("distillation")`; then `stopwatch.laps` is `{"teacher": 12.3, "distillation": 45.6}`.
    """

    def __init__(self):
        self.laps = {}
        self._since = time.time()

    def lap(self, name):
        now = time.time()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._since, 1)
        self._since = now


def _same_baseline(a, b):
    # The labels-only student borrows only the vocabulary and embeddings of the (first) teacher,
    # which an ensemble of the default teacher shares with it.
    first_teacher = dataclasses.replace(a.teacher, ensemble=1)
    return (first_teacher, a.student, a.max_unlabelled, a.validation_rows) == (
        b.teacher, b.student, b.max_unlabelled, b.validation_rows) and all(
        getattr(a.distill, field) == getattr(b.distill, field) for field in BASELINE_DISTILL_FIELDS)


def _cell_dir(run_dir, task, num_labels, seed, variant=None):
    cell_dir = os.path.join(run_dir, task, f"n{num_labels}_seed{seed}")
    return os.path.join(cell_dir, "variants", _slug(variant)) if variant else cell_dir


def ablation_cells(specs, task, num_labels, seeds, run_dir, configs, names, latency_rows=200):
    """The `ablations.ABLATIONS` in `names`, each on `task` at `num_labels` unless it names its own
    task or N, once per seed.

    `specs` maps task names to datasets; a variant whose task is not among them is
    skipped. Returns the variants' rows and the default recipe's rows they are
    compared with. Every row carries its student's batch-1 latency
    (`student_latency_ms`): some ideas trade accuracy for speed.
    """
    unknown = sorted(set(names) - set(ablations.ABLATIONS))
    if unknown:
        raise KdistillError(f"unknown ablation {', '.join(unknown)}; the names are kdistill.ablations.ABLATIONS' keys")
    rows, defaults, texts = [], {}, {}
    for name, overrides in ablations.ABLATIONS.items():
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
                _with_latency(defaults[cell], _cell_dir(run_dir, *cell), texts[at_task])
            row = quality_cell(at_task, specs[at_task], at_n, seed, run_dir, configs, variant=name, overrides=overrides)
            rows.append(_with_latency(row, _cell_dir(run_dir, *cell, name), texts[at_task]))
    return rows, list(defaults.values())


def _with_latency(row, cell_dir, texts):
    """`row` with its student's latency: measured, or as a restored cell (whose student is gone) recorded it."""
    if "latency_ms_p50" not in row:
        row["latency_ms_p50"] = student_latency_ms(os.path.join(cell_dir, "student"), texts)
    return row


def student_latency_ms(student_dir, texts):
    """Median batch-1 LiteRT latency (ms, token ids in, one thread) of the saved student, per mode in
    `cost.LATENCY_MODES`; measured once per saved model and timed texts, and cached beside it."""
    from kdistill.export import latency, runtime, tflite

    model_path = os.path.join(student_dir, pipeline.STUDENT_FILE)
    timed = keys.of(texts)
    key = f"{os.path.getmtime(model_path)}:{os.path.getsize(model_path)}:{timed}"
    cache_path = os.path.join(student_dir, "latency.json")
    if os.path.exists(cache_path) and io.read_json(cache_path).get("key") == key:
        return io.read_json(cache_path)["p50"]
    student = pipeline.load_student(student_dir)
    p50 = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in cost_lib.LATENCY_MODES:
            path = tflite.export_student(student, os.path.join(tmp, f"{mode}.tflite"), mode, kind="token_ids")
            rows = runtime.TFLiteClassifier(path).rows(texts)
            p50[mode] = float(np.median(latency.invoke_latencies_ms(path, rows)))
    io.write_json({"key": key, "p50": p50}, cache_path)
    return p50


def _slug(text):
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")[:60]
