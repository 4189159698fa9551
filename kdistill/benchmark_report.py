"""The benchmark's report: `RESULTS.md`, `results.json` and the plots, from the measured rows.

`write_results` takes what the cells (`benchmark.py`) and the cost table
(`cost.py`) measured, `{"quality": rows, "ablations": rows, "ablation_defaults":
rows, "cost": table}`, and writes the label-efficiency table and plot, each
ablation beside the default recipe (its change from `ablations.ABLATIONS`), the
accuracy-latency front of the student shapes, the cost table and the goals. It measures nothing:
`python -m apps.benchmark` reruns only what changed and renders again.

`PEER_FIGURES` holds the figures measured outside kdistill that the goals
compare with, and where they come from.

Example:

```python
results = io.read_json("docs/results.json")
write_results(results, "docs", command=results["command"])
goals_table(results)  # the goals, measured and met or not, as Markdown rows
```
"""

import collections
import datetime
import os
import platform

import keras
import numpy as np

from kdistill import ablations, cost as cost_lib, io

# Student fields that set the network's shape, hence its latency; the rest of a variant's change is its recipe.
SHAPE_FIELDS = ("vocabulary_size", "sequence_length", "embedding_dim", "filters", "kernel_sizes", "separable")


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
        # The student against each baseline, paired by seed (same labels, same pool).
        for name, baseline in (("gain", "labels_only_acc"), ("gap", "teacher_acc")):
            entry[name], entry[name + "_interval"] = mean_interval([c["student_acc"] - c[baseline] for c in cells])
        summary.append(entry)
    return summary


# Student's t, 97.5% quantile, by degrees of freedom: the 95% interval of a mean over a few seeds.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def mean_interval(values):
    """The mean of `values` (one per seed) and its 95% t-interval, None for a single value (no spread to use)."""
    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, None
    half = T975.get(len(values) - 1, 1.96) * float(values.std(ddof=1)) / np.sqrt(len(values))
    return mean, (float(mean - half), float(mean + half))


def write_results(results, docs_dir, command, notes=""):
    """`results.json`, the plots and `RESULTS.md` in `docs_dir`."""
    os.makedirs(docs_dir, exist_ok=True)
    results = dict(results, command=command, machine=machine(), date=datetime.date.today().isoformat())
    io.write_json(results, os.path.join(docs_dir, "results.json"))
    summary = summarise(results["quality"])
    plots = [_plot_label_efficiency(summary, docs_dir)]
    if results.get("cost"):
        plots.append(_plot_cost(results["cost"], docs_dir))
    with io.atomic_path(os.path.join(docs_dir, "RESULTS.md")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(_markdown(results, summary, plots, notes, docs_dir))


def _project_doc(name, docs_dir):
    """A link from a document in `docs_dir` to the project's docs/`name`, wherever `docs_dir` is."""
    project_docs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
    return os.path.relpath(os.path.join(project_docs, name), os.path.abspath(docs_dir)).replace(os.sep, "/")


# The vector units that go with a CPU's speed here. Two cores of another model (AMD EPYC with AVX2, no AVX-512)
# trained the student about 4x slower than the AVX-512 ones of 2026-12-06, and the three teachers side by side
# more than 5x (2026-12-07), so a timing means little without the machine it came from.
_VECTOR_UNITS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def machine():
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores ({cpu_model()}), {platform.python_version()}, "
            f"keras {keras.__version__}")


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name and which of `_VECTOR_UNITS` it has; off Linux, the platform's processor name."""
    fields = {}
    try:
        with open(cpuinfo) as lines:
            for line in lines:
                if not line.strip():
                    break  # the first core's block: every core of a machine reads the same
                name, _, value = line.partition(":")
                fields[name.strip()] = value.strip()
    except OSError:
        return platform.processor() or "CPU unknown"
    flags = set(fields.get("flags", "").split())
    units = [unit for unit in _VECTOR_UNITS if unit in flags] or ["no AVX2"]
    return f"{fields.get('model name', 'CPU unknown')}, {' '.join(units)}"


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
        *(["", notes.strip()] if notes else []),
        "",
        "## Label efficiency (dev accuracy)",
        "",
        "Teacher: MiniLM-L6 fine-tuned on the N labels. Labels-only: the student trained on the N "
        "labels alone (same network, vocabulary and embedding initialisation). Distilled: the "
        "student trained on the N labels plus the teacher's logits on the rest of train "
        "(unlabelled). Accuracies: mean ± standard deviation over seeds. Differences: the mean over seeds of "
        "each seed's difference (both models saw the same labels and pool), with its 95% t-interval over seeds "
        "where there are several: it says how far another seed could move the figure, not how far another dev "
        "set could.",
        "",
        "| task | N | seeds | teacher | labels-only | distilled | distilled - labels-only | distilled - teacher | agreement |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summary:
        lines.append(
            f"| {s['task']} | {s['num_labels']} | {s['seeds']} | {_pm(s, 'teacher_acc')} | "
            f"{_pm(s, 'labels_only_acc')} | {_pm(s, 'student_acc')} | {_difference(s, 'gain')} | "
            f"{_difference(s, 'gap')} | {100 * s['agreement']:.1f}% |"
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
            "`--ablations=<name>,...` reruns any variant in `kdistill.ablations.ABLATIONS`. Ideas measured as no "
            f"gain and taken out of the code are in [IDEAS.md]({_project_doc('IDEAS.md', docs_dir)}); earlier results "
            "documents, among them a GPU sweep of 44 student shapes, are in "
            f"[appendix/]({_project_doc('appendix/README.md', docs_dir)}).",
        ]
    lines += _front_section(results, docs_dir)
    cost = results.get("cost")
    if cost:
        lines += _cost_markdown(cost) + ["", f"![cost]({plots[1]})"]
    lines += _time_section(results)
    lines += ["", "## Goals", ""] + goals_table(results)
    return "\n".join(lines) + "\n"


# The stages of `apps.benchmark` and the phases of a cell (`benchmark.quality_cell`), as the report names them.
STAGES = {"quality": "the quality grid", "ablations": "the ablations", "cost": "the cost table"}
PHASES = {"teacher": "fine-tuning teachers", "teacher_labels": "the teachers labelling the texts",
          "labels_only": "labels-only students", "distillation": "distilling students"}


def _time_section(results):
    """Where the minutes went: the stages of the run that wrote the file, and the phases of its cells."""
    lines = []
    run = results.get("run_seconds")
    if run:
        stages = ", ".join(f"{STAGES.get(k, k)} {v / 60:.1f}" for k, v in run.items())
        lines += ["", "## Where the time goes", "",
                  f"The run that wrote this file took {sum(run.values()) / 60:.1f} minutes ({stages}). A cell "
                  "already in the run folder's cache costs it a second, so only a run with an empty `--out_dir` "
                  "times the whole grid."]
    cells = [r for r in results["quality"] + results.get("ablations", []) if r.get("phase_seconds")]
    if cells:
        totals = {phase: sum(row["phase_seconds"].get(phase, 0.0) for row in cells) for phase in PHASES}
        spent = sum(totals.values())
        phases = ", ".join(f"{PHASES[k]} {v / 60:.1f} min ({100 * v / spent:.0f}%)" for k, v in totals.items())
        if not run:
            lines += ["", "## Where the time goes"]
        lines += ["", f"{len(cells)} of the cells above timed their phases when they were computed (the others "
                  f"predate the timing): {spent / 60:.1f} minutes in all, of which {phases}. A phase the cache "
                  "answered (a teacher or logits another cell had made) counts near zero."]
        machines = collections.Counter(row.get("machine", "a machine not recorded (before 2026-12-07)") for row in cells)
        if len(machines) > 1:
            lines += ["", "They were timed on more than one machine, so their times compare only within one: " +
                      "; ".join(f"{count} on {name}" for name, count in machines.most_common()) + "."]
    return lines


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
                  for mode in cost_lib.LATENCY_MODES} if results.get("cost") else {}

    def latency_cells(latency):
        return " | ".join(
            f"{1000 * latency[m]:.1f}" + (f" ({teacher_ms[m] / latency[m]:.0f}x)" if m in teacher_ms else "")
            if latency and m in latency else "" for m in cost_lib.LATENCY_MODES
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
        change = ", ".join(f"{k}={v}" for k, v in _change(variant).items())
        deltas = [f"{100 * (r['student_acc'] - b['student_acc']):+.2f}" for r, b in zip(rows, bases) if b]
        delta = " / ".join(deltas) + (f" (mean {_mean_delta(rows, bases):+.2f})" if len(deltas) > 1 else "")
        accuracies, labels_only, rest = measured(rows)
        lines.append(f"| {variant} | `{change}` | {task} | {n} | {accuracies} | {delta} | {labels_only} | {rest} |")
    return lines


def _change(variant):
    """An ablation's config fields, without the cell it picks (`task`, `num_labels`)."""
    return {k: v for k, v in ablations.ABLATIONS.get(variant, {}).items() if k not in ("task", "num_labels")}


def front_table(results):
    """Each student shape under each teacher recipe measured with it: `{(task, N): [row]}`, fastest shape first.

    A row holds the means over seeds of the teacher (the ensemble, for an ensemble recipe), the
    student and their gap, the shape's batch-1 latency per mode (its single-teacher student of the
    first seed: every recipe runs the same network) and, with a cost table, the speed-ups over
    the MiniLM and BERT-base-sized teachers. `front` marks the rows no other row of the task beats
    on both the gap and the float32 latency. Pool cuts are left out: they measure the pool, not
    the recipe.
    """
    groups = {}
    for variant, rows, bases in _ablation_groups(results):
        change = _change(variant)
        if "transfer_pool" in change:
            continue
        shape = _described({k: v for k, v in change.items() if k in SHAPE_FIELDS})
        recipe = _described({k: v for k, v in change.items() if k not in SHAPE_FIELDS})
        cell = (rows[0]["task"], rows[0]["num_labels"])
        groups[(cell, shape, recipe)] = rows
        if all(bases):
            groups.setdefault((cell, "default", "default"), bases)
    latency = {}
    for (cell, shape, recipe), rows in sorted(groups.items(), key=lambda item: item[0][2] != "default"):
        if rows[0].get("latency_ms_p50"):
            latency.setdefault((cell, shape), rows[0]["latency_ms_p50"])
    teachers = {name: {mode: results["cost"][name][mode]["latency_ms_p50"] for mode in cost_lib.LATENCY_MODES}
                for name in ("teacher_minilm", "teacher_bert_base")} if results.get("cost") else {}
    table = {}
    for (cell, shape, recipe), rows in groups.items():
        ms = latency.get((cell, shape))
        if not ms:
            continue
        teacher, student = (float(np.mean([r[key] for r in rows])) for key in ("teacher_acc", "student_acc"))
        table.setdefault(cell, []).append({
            "shape": shape, "recipe": recipe, "seeds": len(rows), "teacher_acc": teacher, "student_acc": student,
            "gap": 100 * (teacher - student), "latency_ms_p50": ms,
            "speedups": {name: {mode: t[mode] / ms[mode] for mode in t if mode in ms} for name, t in teachers.items()},
        })
    for rows in table.values():
        for r in rows:
            speed = r["latency_ms_p50"]["float32"]
            r["front"] = not any(o["latency_ms_p50"]["float32"] <= speed and o["gap"] < r["gap"] for o in rows)
        rows.sort(key=lambda r: (r["latency_ms_p50"]["float32"], r["gap"]))
    return table


def _described(change):
    return ", ".join(f"{k}={v}" for k, v in change.items()) or "default"


def _front_section(results, docs_dir):
    table = front_table(results)
    if not table:
        return []
    with_cost = bool(results.get("cost"))
    lines = [
        "",
        "## Accuracy against latency",
        "",
        "Every student shape measured, under every teacher recipe measured with it (pool cuts left out). The gap is "
        "to the teacher the student was distilled from (the ensemble, for an ensemble recipe), means over seeds. "
        "Latency: the shape's single-teacher student (first seed), token ids in, LiteRT batch-1 median over dev "
        "sentences, one thread: every recipe runs the same network"
        + ("; speed-ups are over the MiniLM teacher and the BERT-base-sized model of the cost table, in the same "
           "mode." if with_cost else ".")
        + " **front**: no other row of the task is both faster (float32) and closer to its teacher.",
        "",
    ]
    header = "| task | N | student shape | recipe | seeds | teacher | distilled | gap | float32 µs | dynamic µs |"
    rule = "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    if with_cost:
        header = header.replace("float32 µs | dynamic µs |", "float32 µs | × MiniLM | × BERT-base | dynamic µs | "
                                "× MiniLM | × BERT-base |")
        rule += " ---: | ---: | ---: | ---: |"
    lines += [header + " front |", rule + " --- |"]
    for (task, n), rows in sorted(table.items()):
        for r in rows:
            cells = []
            for mode in cost_lib.LATENCY_MODES:
                cells.append(f"{1000 * r['latency_ms_p50'][mode]:.1f}")
                if with_cost:
                    cells += [f"{r['speedups'][name][mode]:,.0f}x" for name in ("teacher_minilm", "teacher_bert_base")]
            lines.append(
                f"| {task} | {n} | {r['shape']} | {r['recipe']} | {r['seeds']} | {100 * r['teacher_acc']:.2f} | "
                f"{100 * r['student_acc']:.2f} | {r['gap']:.2f} | {' | '.join(cells)} | "
                f"{'**front**' if r['front'] else ''} |")
    return lines + ["", f"![accuracy against latency]({os.path.basename(_plot_front(table, docs_dir))})"]


def _plot_front(table, docs_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(7 * len(table), 4.5), squeeze=False)
    for ax, ((task, n), rows) in zip(axes[0], sorted(table.items())):
        for r in rows:
            x = 1000 * r["latency_ms_p50"]["float32"]
            ax.scatter(x, r["gap"], color="C3" if r["front"] else "C0", s=30, zorder=3)
            ax.annotate(f"{r['shape']}; {r['recipe']}", (x, r["gap"]), fontsize=6, xytext=(4, 2),
                        textcoords="offset points")
        front = [r for r in rows if r["front"]]
        ax.plot([1000 * r["latency_ms_p50"]["float32"] for r in front], [r["gap"] for r in front], "-", color="C3",
                lw=1, label="front")
        ax.axhline(1.0, color="C2", ls="--", lw=1, label="1-point goal")
        ax.set_xlim(0, 2.2 * max(1000 * r["latency_ms_p50"]["float32"] for r in rows))  # room for the labels
        ax.set_ylim(bottom=0)
        ax.set_xlabel("student batch-1 latency, float32, token ids in (µs)")
        ax.set_ylabel("teacher minus student, dev accuracy (points)")
        ax.set_title(f"{task}, N={n}: gap against latency")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path = os.path.join(docs_dir, "front.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _cost_markdown(cost):
    measured = (f"Measured on {cost['date']} ({cost['machine']}) with the student and teachers of the {cost['cell']} "
                "cell; a regeneration keeps this table while that cell's key is unchanged (`--remeasure_cost` measures "
                "it again). " if cost.get("date") else "")
    lines = [
        "",
        "## Cost",
        "",
        f"{measured}Batch-1 latency: LiteRT, one thread, the time of `invoke()` alone (as LiteRT's `benchmark_model` "
        f"counts it), median and p90 over {cost['dev_rows']} dev sentences, "
        f"every model at the student's {cost['sequence_length']}-token window. Teachers take token ids "
        "(no tokenizer in the graph); student rows marked *text* tokenize in the graph, *ids* take token "
        "ids like the teachers. Throughput: sentences/s in TensorFlow at batch 64 (teachers length-bucketed)."
        + (f" The MiniLM rows price one teacher: the recipe's ensemble of {cost['teacher_members']} costs "
           f"{cost['teacher_members']} times as much." if cost.get("teacher_members", 1) > 1 else ""),
        "",
        "| model | mode | params | .tflite bytes | p50 ms | p90 ms | throughput b64 (/s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label in (("teacher_bert_base", "BERT-base-sized (random weights)"), ("teacher_minilm", "MiniLM-L6 teacher")):
        for mode in cost_lib.TEACHER_MODES:
            e = cost[name][mode]
            lines.append(f"| {label} | {mode} | {cost[name]['params']:,} | {e['tflite_bytes']:,} | "
                         f"{e['latency_ms_p50']:.2f} | {e['latency_ms_p90']:.2f} | {cost[name]['throughput_b64']:,.0f} |")
    student = cost["student"]
    for mode in cost_lib.STUDENT_MODES:
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
    for mode in cost_lib.TEACHER_MODES:
        for kind, label in (("", "text-in"), ("_ids", "ids-in")):
            lines.append(f"| batch-1 speed-up, {mode}, student {label} | {r[f'teacher_minilm_speedup_{mode}{kind}']:.0f}x | "
                         f"{r[f'teacher_bert_base_speedup_{mode}{kind}']:.0f}x |")
    lines.append(f"| batch-64 throughput speed-up (TensorFlow) | {r['teacher_minilm_throughput_speedup_b64']:.0f}x | "
                 f"{r['teacher_bert_base_throughput_speedup_b64']:.0f}x |")
    if cost.get("throughput"):
        lines += _throughput_markdown(cost["throughput"])
    return lines


# How `cost.throughput` names what it timed, as the table shows it.
THROUGHPUT_ROWS = (
    ("teacher labelling: float32 TensorFlow, batch 64, length buckets (on a GPU, or `--teacher_runtime=tensorflow`)",
     "teacher_labelling", "tensorflow"),
    ("teacher labelling: int8 LiteRT, batch 32, length buckets (`--teacher_runtime=auto` on a CPU)",
     "teacher_labelling", "litert-int8"),
    ("student, bulk (`apps.predict --input_file`): float32 LiteRT, batch 64, any length", "student_bulk", None),
    ("student, batch-1 LiteRT limit: one thread's p50 (float32, ids) on every core", "student_batch1_limit", None),
    ("fastText (supervised, bigrams), trained on the same labels", "fasttext", None),
)


def _throughput_markdown(t):
    teacher = t["teacher_labelling"]
    exact, fast = teacher["tensorflow"], teacher["litert-int8"]
    lines = [
        "",
        "### Reading many texts",
        "",
        f"One process, {t['cpus']} cores, tokenization included, timed after a warm-up. The teacher rows label "
        f"{t['texts']:,} texts sampled from the pool (one teacher: an ensemble's first member); the student and fastText read "
        f"the same sample {t['student_texts'] // t['texts']} times ({t['student_texts']:,} texts).",
        "",
        "| what | texts/s | texts/s per core | ms per text |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, key, runtime in THROUGHPUT_ROWS:
        speed = (t[key][runtime] if runtime else t[key])["texts_per_s"]
        lines.append(f"| {label} | {speed:,.0f} | {speed / t['cpus']:,.0f} | {1000 / speed:.3f} |")
    student, limit = t["student_bulk"]["texts_per_s"], t["student_batch1_limit"]["texts_per_s"]
    lines += [
        "",
        f"- Labelling: int8 is {fast['texts_per_s'] / exact['texts_per_s']:.2f}x float32, and gives its top label on "
        f"{100 * fast['dev_agreement']:.2f}% of dev (largest probability difference "
        f"{fast['dev_max_probability_difference']:.3f}).",
        f"- The student in bulk reaches {100 * student / limit:.0f}% of its batch-1 limit and "
        f"{student / t['fasttext']['texts_per_s']:.2f}x fastText's speed; fastText's dev accuracy on these labels: "
        f"{100 * t['fasttext']['dev_accuracy']:.2f}%.",
    ]
    return lines


def _difference(summary, key):
    """A summary's difference in points, with its 95% interval when it has one."""
    interval = summary[key + "_interval"]
    text = f"{100 * summary[key]:+.1f}"
    return text + (f" ({100 * interval[0]:+.1f} to {100 * interval[1]:+.1f})" if interval else "")


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


# Issue #29's bars for every task: the student's mean gap to its teacher, and its gain over labels-only on
# CLINC150 (many classes, few labels each), in points.
MAX_GAP, CLINC150_MIN_GAIN = 2.0, 5.0


def _interval_text(interval, sign=1):
    """` (a to b)` in points, for an interval in fractions (`sign` -1 turns a difference into a gap)."""
    if interval is None:
        return ""
    low, high = sorted(sign * 100 * bound for bound in interval)
    return f" ({low:.2f} to {high:.2f})"


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
                 f"{gap:.2f} points behind (student {per_seed(task, 'student_acc')})"
                 + ("" if gap <= 1.0 else _closest_variant(results, task, s["seeds"])), gap <= 1.0)
    # Issue #29's bar for a user's own data, on every task: what a task never seen here should get too.
    for (task, n), s in sorted(summary.items()):
        if n != 1000:
            continue
        min_gain = CLINC150_MIN_GAIN if task == "clinc150" else 0.0
        gap, gain = -100 * s["gap"], 100 * s["gain"]
        goal(f"{task} N=1000: mean gap <= {MAX_GAP:.1f} points, student above labels-only"
             + (f" by {min_gain:.0f} points or more" if min_gain else ""),
             f"gap {gap:.2f}{_interval_text(s['gap_interval'], -1)}, gain {gain:+.2f}"
             f"{_interval_text(s['gain_interval'])} ({s['seeds']} seed{'s' if s['seeds'] > 1 else ''})",
             gap <= MAX_GAP and gain > min_gain)
    # A cell is one task, N and seed (a row of the "Every cell" table), not a task's mean over seeds.
    best = max(results["quality"], key=lambda r: r["student_acc"] - r["teacher_acc"], default=None)
    if best is not None:
        margin = 100 * (best["student_acc"] - best["teacher_acc"])
        goal("student >= teacher in at least one cell",
             f"best cell {margin:+.2f} points ({best['task']} N={best['num_labels']} seed {best['seed']})", margin >= 0)
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
            for mode in cost_lib.TEACHER_MODES:
                speedup = r[f"{teacher}_speedup_{mode}_ids"]
                goal(f"batch-1 speed-up over {label} >= {bar}x ({mode}, token ids in on both sides)",
                     f"{speedup:.0f}x (student text-in: {r[f'{teacher}_speedup_{mode}']:.0f}x)"
                     + ("" if speedup >= bar else _fastest_variant(results, teacher, mode, bar)), speedup >= bar)
    return ["| goal | measured | met |", "| --- | --- | --- |"] + rows


def _closest_variant(results, task, seeds):
    """The ablation (pool cuts aside) measured on as many seeds as the default whose mean student comes closest
    to its own teacher (an ensemble's, for an ensemble), as a clause for the gap goal."""
    gaps = [(100 * float(np.mean([r["teacher_acc"] - r["student_acc"] for r in rows])), variant)
            for variant, rows, _ in _ablation_groups(results)
            if (rows[0]["task"], rows[0]["num_labels"]) == (task, 1000) and len(rows) == seeds
            and "transfer_pool" not in _change(variant)]
    if not gaps:
        return ""
    gap, variant = min(gaps)
    return f"; closest recipe measured: {variant}, {gap:.2f} points behind its teacher ({seeds} seeds)"


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
