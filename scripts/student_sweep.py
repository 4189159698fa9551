"""A wide sweep of student variants over the benchmark's cached teacher logits: docs/SWEEP.md.

The benchmark's ablations (docs/RESULTS.md) run one variant on one seed through the whole
pipeline, a few minutes each on 2 CPU cores. This script trades that fidelity for breadth: it
exports the N=1000 cells of both tasks once (token ids, teacher logits and sentence vectors, the
teacher's token embeddings), then trains each variant of the student on every cell (2 tasks x 2
seeds) from those arrays alone, on any Keras backend (JAX on a GPU for wide sweeps).

    python scripts/student_sweep.py --action=export                    # needs runs/benchmark (apps.benchmark)
    KERAS_BACKEND=jax python scripts/student_sweep.py --action=run --variants=all --results=runs/sweep/r.jsonl
    python scripts/student_sweep.py --action=report --results=docs/student_sweep.jsonl   # docs/SWEEP.md + plot

`--worker=i --workers=n` runs every n-th job, so n processes can share one GPU. Each variant is
the library's recipe with some `StudentConfig`/`DistillConfig` fields changed, trained by the
library itself: the network from `kdistill.student.conv_classifier`, the embedding initialisation,
`Distiller`, optimiser and schedule from `kdistill.training.new_distiller`. The sweep owns only its
input path (numpy arrays of token ids shuffled by Keras instead of tf.data, so other random draws).
"""

import json
import os
import sys
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    # Defined when run, not on import: tests import this script beside the binaries.
    flags.DEFINE_enum("action", "run", ["export", "run", "report"], "What to do.")
    flags.DEFINE_string("run_dir", "runs/benchmark", "The benchmark's cache (export).")
    flags.DEFINE_string("data_dir", None, "The task folders (export); default: apps.benchmark's.")
    flags.DEFINE_string("arrays_dir", "runs/sweep/arrays", "Where the exported cells go (export, run).")
    flags.DEFINE_list("variants", ["all"], "Variant names from VARIANTS, or all (run).")
    flags.DEFINE_integer("worker", 0, "This process runs jobs worker, worker + workers, ... (run).")
    flags.DEFINE_integer("workers", 1, "Processes sharing the jobs (run).")
    flags.DEFINE_integer("steps_per_execution", 1, "Keras steps_per_execution (run); does not change the result.")
    flags.DEFINE_string("results", "runs/sweep/results.jsonl", "JSON lines, one per run (run appends, report reads).")
    flags.DEFINE_string("docs_dir", "docs", "Where SWEEP.md and sweep.png go (report).")


TASKS = ("sst2", "ag_news")
SEEDS = (0, 1)
MAX_VOCABULARY = 12000  # the pieces exported; a variant keeps the most frequent `vocab` of them
SEQUENCE_LENGTH = {"sst2": 64, "ag_news": 128}  # exported; a variant keeps the first `seq`
PARAMETER_BUDGET = 582_000  # 1/39 of MiniLM-L6, issue #4

# Each variant changes the default recipe (`kdistill.StudentConfig` and `DistillConfig`) in the
# fields it names. Two keys belong to the sweep: `augmented` adds the teacher-labelled perturbed copies of
# augment_134k (SST-2 only), and `tasks` the tasks a variant runs on.
VARIANTS = {
    "default": {},
    "dropout_0.1": dict(dropout=0.1), "dropout_0.5": dict(dropout=0.5), "dropout_0": dict(dropout=0.0),
    "epochs_8": dict(epochs=8), "epochs_16": dict(epochs=16), "epochs_2": dict(epochs=2),
    "lr_1e-3": dict(learning_rate=1e-3), "lr_5e-3": dict(learning_rate=5e-3),
    "batch_64": dict(batch_size=64), "batch_256": dict(batch_size=256),
    "alpha_0": dict(alpha=0.0), "alpha_0.3": dict(alpha=0.3),
    "T_1": dict(temperature=1.0), "T_4": dict(temperature=4.0), "mse": dict(distillation_loss="mse"),
    "aug": dict(augmented=True, tasks=("sst2",)), "aug_epochs_8": dict(augmented=True, epochs=8, tasks=("sst2",)),
    "emb_96_v5000": dict(embedding_dim=96, vocabulary_size=5000), "emb_128": dict(embedding_dim=128),
    "emb_32": dict(embedding_dim=32), "emb_32_f256": dict(embedding_dim=32, filters=256),
    "filters_256": dict(filters=256), "filters_256_v4000": dict(filters=256, vocabulary_size=4000),
    "vocab_4000": dict(vocabulary_size=4000), "vocab_11000": dict(vocabulary_size=11000),
    "kernels_1_5": dict(kernel_sizes=(1, 2, 3, 4, 5)), "kernels_2_7": dict(kernel_sizes=(2, 3, 4, 5, 6, 7)),
    "hidden_128": dict(hidden_units=128),
    "dilated_124": dict(architecture="dilated", dilations=(1, 2, 4)),
    "dilated_1248": dict(architecture="dilated", dilations=(1, 2, 4, 8)),
    "dilated_f96": dict(architecture="dilated", filters=96, dilations=(1, 2, 4)),
    "stacked_f64": dict(architecture="stacked", filters=64),
    "random_init": dict(init_embeddings="random"), "max_pool": dict(pooling="max"), "wd_1e-2": dict(weight_decay=1e-2),
    "epochs_8_dropout_0.1": dict(epochs=8, dropout=0.1),
    "seq_32": dict(sequence_length=32), "seq_48": dict(sequence_length=48),
    "k23_f96": dict(kernel_sizes=(2, 3), filters=96),
    "emb_32_k23_f128": dict(embedding_dim=32, kernel_sizes=(2, 3), filters=128),
    "dilated_124_aug": dict(architecture="dilated", dilations=(1, 2, 4), augmented=True, tasks=("sst2",)),
    "dilated_1248_f96": dict(architecture="dilated", filters=96, dilations=(1, 2, 4, 8)),
    "dilated_124_drop0.1": dict(architecture="dilated", dilations=(1, 2, 4), dropout=0.1),
    "dilated_124_drop0.1_aug": dict(architecture="dilated", dilations=(1, 2, 4), dropout=0.1, augmented=True,
                                    tasks=("sst2",)),
    "k23_f96_dilated": dict(architecture="dilated", filters=64, dilations=(2,)),
    # Issue #12: the teacher's sentence vector as a second target (distiller.py).
    "vectors_1": dict(vector_weight=1.0), "vectors_3": dict(vector_weight=3.0),
}


def configs(name, seed):
    """The library configs of variant `name` on `seed`, whether it adds the perturbed copies, and its tasks."""
    from kdistill.config import DistillConfig, StudentConfig

    overrides = dict(VARIANTS[name])
    tasks, augmented = overrides.pop("tasks", TASKS), overrides.pop("augmented", False)
    fields = {config: {k: v for k, v in overrides.items() if k in config.__dataclass_fields__}
              for config in (StudentConfig, DistillConfig)}
    unknown = set(overrides) - set(fields[StudentConfig]) - set(fields[DistillConfig])
    if unknown:
        raise ValueError(f"variant {name}: unknown fields {sorted(unknown)}")
    student = StudentConfig(**fields[StudentConfig])
    distill = DistillConfig(seed=seed, **fields[DistillConfig])
    if distill.fine_tune_epochs or distill.transfer_pool or distill.augment_to:
        raise ValueError(f"variant {name}: the sweep trains from exported arrays; run that idea through apps.benchmark")
    return student, distill, augmented, tasks


def export(run_dir, data_dir, arrays_dir):
    """One .npz per N=1000 cell, from the benchmark's cached teachers and their outputs (computes nothing new)."""
    from kdistill import augment, pipeline
    from kdistill import teacher as teacher_lib
    from kdistill.config import TeacherConfig

    os.makedirs(arrays_dir, exist_ok=True)
    for task in TASKS:
        for seed in SEEDS:
            splits = pipeline.load_splits(os.path.join(data_dir, task), 1000, seed)
            teacher_dir = os.path.join(run_dir, task, f"n1000_seed{seed}", "teacher")
            teacher, _ = pipeline.train_or_reuse_teacher(splits, teacher_dir, TeacherConfig(), seed)
            targets = pipeline.label(teacher, teacher_dir, splits, vectors=True)
            arrays, tokenizer = cell_arrays(teacher, splits, targets, SEQUENCE_LENGTH[task])
            if task == "sst2":  # the perturbed copies of augment_134k, labelled (and cached) by the teacher
                texts = np.concatenate([splits.labelled_texts, splits.unlabelled_texts])
                extra = augment.augment_texts(texts, 1, seed=seed)
                arrays["aug_ids"] = _token_ids(tokenizer, extra)
                extra_targets = teacher_lib.outputs(teacher, extra, cache_dir=teacher_dir, vectors=True)
                arrays["aug_logits"] = extra_targets["logits"].astype(np.float32)
                arrays["aug_vectors"] = extra_targets["vectors"].astype(np.float16)
            np.savez_compressed(os.path.join(arrays_dir, f"{task}_s{seed}.npz"), **arrays)
            print(f"[sweep] exported {task} seed {seed}: {len(arrays['train_ids']):,} transfer texts", flush=True)


def cell_arrays(teacher, splits, targets, sequence_length):
    """The arrays `train` reads for one cell (ids over the task's `MAX_VOCABULARY` most used pieces), and the tokenizer."""
    import keras

    from kdistill import tokenizer as tokenizer_lib

    texts = np.concatenate([splits.labelled_texts, splits.unlabelled_texts])
    vocabulary = teacher.preprocessor.tokenizer.get_vocabulary()
    kept = np.asarray(tokenizer_lib.prune_vocabulary(vocabulary, texts, MAX_VOCABULARY), np.int32)
    tokenizer = tokenizer_lib.StudentTokenizer(vocabulary, sequence_length, kept.tolist())
    arrays = dict(
        train_ids=_token_ids(tokenizer, texts),
        train_logits=np.concatenate([targets["labelled"], targets["unlabelled"]]).astype(np.float32),
        train_labels=np.concatenate([splits.labelled_labels, np.full(len(splits.unlabelled_texts), -1)]).astype(np.int32),
        dev_ids=_token_ids(tokenizer, splits.dev_texts),
        dev_labels=np.asarray(splits.dev_labels, np.int32),
        dev_logits=np.asarray(targets["dev"], np.float32),
        emb=keras.ops.convert_to_numpy(teacher.backbone.token_embedding.embeddings)[kept].astype(np.float16),
        kept=kept,
    )
    if "labelled_vectors" in targets:
        arrays["train_vectors"] = np.concatenate([targets["labelled_vectors"], targets["unlabelled_vectors"]]).astype(np.float16)
    return arrays, tokenizer


def _token_ids(tokenizer, texts):
    texts = np.asarray(texts, dtype=object)
    return np.concatenate([tokenizer(texts[i : i + 4096]).numpy() for i in range(0, len(texts), 4096)]).astype(np.uint16)


def distiller_for(name, seed, d, steps_per_execution=1):
    """The library's `Distiller` and student network for variant `name`, with the cell's arrays `d` as its
    inputs: `(distiller, inputs, labels, distill_config)`. Only the input path is the sweep's own."""
    import keras

    from kdistill import student as student_lib
    from kdistill import training

    student_config, distill_config, augmented, _ = configs(name, seed)
    # A corpus with fewer pieces than the variant keeps (a small test cell) keeps them all, as pruning does.
    vocabulary = min(student_config.vocabulary_size or len(d["kept"]), len(d["kept"]))
    length = student_config.sequence_length

    def remap(ids):
        return _remap(ids, vocabulary, length)

    inputs = {"token_ids": remap(d["train_ids"]), "teacher_logits": d["train_logits"]}
    labels = d["train_labels"]
    if distill_config.vector_weight:
        inputs["teacher_vectors"] = d["train_vectors"].astype(np.float32)
    if augmented and "aug_ids" in d:
        extra = {"token_ids": remap(d["aug_ids"]), "teacher_logits": d["aug_logits"], "teacher_vectors": d.get("aug_vectors")}
        inputs = {key: np.concatenate([value, extra[key]]) for key, value in inputs.items()}
        labels = np.concatenate([labels, np.full(len(d["aug_ids"]), -1, np.int32)])
    keras.utils.set_random_seed(seed)
    network = student_lib.conv_classifier(vocabulary, d["train_logits"].shape[1], **student_config.network_kwargs())
    if student_config.init_embeddings == "teacher_outputs":
        raise ValueError("the sweep's exported cell holds the teacher's input embeddings, not its token vectors")
    training.init_embeddings(network, d["emb"], np.arange(vocabulary), student_config, seed)
    vector_dim = d["train_vectors"].shape[1] if distill_config.vector_weight else None
    distiller = training.new_distiller(None, network, distill_config, len(labels), vector_dim=vector_dim,
                                      steps_per_execution=steps_per_execution)
    return distiller, inputs, labels, distill_config


def _remap(ids, vocabulary, length):
    """The exported ids cut to `length` pieces; pieces past the variant's vocabulary become [UNK] (id 1), as
    pruning does (the exported pieces are in the pruning's frequency order)."""
    ids = ids[:, :length].astype(np.int32)
    return np.where(ids >= vocabulary, 1, ids)


def train(name, seed, d, steps_per_execution=1):
    """Distils one student from the arrays `d` of one cell; returns its row of results."""
    from kdistill import student as student_lib

    distiller, inputs, labels, config = distiller_for(name, seed, d, steps_per_execution)
    network = distiller.network
    start = time.time()
    distiller.fit(inputs, labels, batch_size=config.batch_size, epochs=config.epochs_for(len(labels)), shuffle=True,
                  verbose=0)
    dev_ids = _remap(d["dev_ids"], network.get_layer("token_embedding").input_dim, network.input_shape[1])
    dev = network.predict(dev_ids, batch_size=1024, verbose=0)
    seen = network.predict(inputs["token_ids"][:20000], batch_size=1024, verbose=0)
    return dict(acc=float(np.mean(dev.argmax(-1) == d["dev_labels"])),
                agree=float(np.mean(dev.argmax(-1) == d["dev_logits"].argmax(-1))),
                train_agree=float(np.mean(seen.argmax(-1) == inputs["teacher_logits"][:20000].argmax(-1))),
                teacher=float(np.mean(d["dev_logits"].argmax(-1) == d["dev_labels"])),
                params=int(network.count_params()), macs=student_lib.conv_multiply_adds(network),
                seconds=round(time.time() - start, 1))


def run(names, arrays_dir, results, worker=0, workers=1, steps_per_execution=1):
    import keras

    names = list(VARIANTS) if names == ["all"] else names
    jobs = [(n, t, seed) for n in names for t in configs(n, 0)[3] for seed in SEEDS][worker::workers]
    os.makedirs(os.path.dirname(results) or ".", exist_ok=True)
    cells = {}
    for name, task, seed in jobs:
        key = f"{task}_s{seed}"
        if key not in cells:
            cells[key] = dict(np.load(os.path.join(arrays_dir, f"{key}.npz")))
        row = dict(name=name, task=task, seed=seed)
        try:
            row.update(train(name, seed, cells[key], steps_per_execution))
        except Exception as error:  # one broken variant must not stop the sweep
            row["error"] = repr(error)[:300]
        row["backend"] = keras.backend.backend()
        row["trainer"] = "kdistill"  # the library's Distiller and student builder (rows without it: see report())
        print(json.dumps(row), flush=True)
        with open(results, "a") as f:
            f.write(json.dumps(row) + "\n")


def summarise(rows):
    """variant -> {(task, seed): row}, the last row of each; failed runs are left out."""
    table = {}
    for row in rows:
        if "error" not in row:
            table.setdefault(row["name"], {})[(row["task"], row["seed"])] = row
    return table


def mean_acc(cells, task):
    values = [cells[(task, seed)]["acc"] * 100 for seed in SEEDS if (task, seed) in cells]
    return float(np.mean(values)) if len(values) == len(SEEDS) else None


def change(name):
    return ", ".join(f"{k}={v}" for k, v in VARIANTS[name].items() if k != "tasks") or "(the default recipe)"


def report(results, docs_dir):
    rows = [json.loads(line) for line in open(results)]
    table = summarise(rows)
    default = table["default"]
    teacher = {task: float(np.mean([default[(task, s)]["teacher"] * 100 for s in SEEDS])) for task in TASKS}
    base = {task: mean_acc(default, task) for task in TASKS}

    def fmt(value, sign=False):
        return "–" if value is None else (f"{value:+.2f}" if sign else f"{value:.2f}")

    def delta(cells, task):
        value = mean_acc(cells, task)
        return None if value is None else value - base[task]

    def sst2_gain(name):
        value = delta(table[name], "sst2")
        return -99.0 if value is None else value

    order = sorted(table, key=sst2_gain, reverse=True)
    not_run = [name for name in VARIANTS if name not in table]
    lines = [
        "# Student sweep",
        "",
        f"Generated by `python scripts/student_sweep.py --action=report --results={results}` from the runs in "
        f"that file ({len(rows)} runs on {'; '.join(sorted({r.get('device') or r.get('backend', '?') for r in rows}))}). "
        "How the runs were made is in the script's docstring."
        + (f" {sum('trainer' not in r for r in rows)} of the runs predate it: they were made by the script's own "
           "copy of the student network and loss (the same layers and formula, checked by a test at the time, "
           "before the sweep became a driver of the library's Distiller)." if any("trainer" not in r for r in rows)
           else ""),
        "",
        "Each variant changes one or two settings of the default student recipe and is distilled from the "
        "benchmark's cached N=1000 teachers (2 tasks x seeds 0 and 1), so every number below is the dev accuracy "
        "of a distilled student. Deltas are means over the two seeds against the default recipe's runs in the "
        "same sweep. Single-seed differences of 1-2 points are noise here (the two seeds of the default differ by "
        f"{abs(default[('sst2', 0)]['acc'] - default[('sst2', 1)]['acc']) * 100:.1f} points on SST-2).",
        "",
        f"Teachers (mean of seeds 0 and 1): SST-2 {teacher['sst2']:.2f}%, AG News {teacher['ag_news']:.2f}%. "
        f"Default student: SST-2 {fmt(base['sst2'])}%, AG News {fmt(base['ag_news'])}%.",
        "",
        *_findings(table, teacher),
        "",
        "Agreement: the student's dev predictions that match the teacher's (SST-2, mean of seeds); *fit*: the same on "
        "the first 20,000 transfer texts, which the student trained on. Multiply-adds: the convolutions' per text.",
        "",
        "| variant | change | SST-2 s0 | SST-2 s1 | SST-2 vs default | AG s0 | AG s1 | AG vs default "
        "| agreement | fit | params (SST-2) | M multiply-adds |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in order:
        cells = table[name]

        def acc(task, seed):
            return fmt(cells[(task, seed)]["acc"] * 100) if (task, seed) in cells else "–"

        sst = [cells[("sst2", s)] for s in SEEDS if ("sst2", s) in cells]
        any_row = cells.get(("sst2", 0)) or next(iter(cells.values()))
        params = f"{any_row['params']:,}" + ("" if any_row["params"] <= PARAMETER_BUDGET else " (over budget)")
        lines.append(
            f"| {name} | {change(name)} | {acc('sst2', 0)} | {acc('sst2', 1)} | {fmt(delta(cells, 'sst2'), True)} "
            f"| {acc('ag_news', 0)} | {acc('ag_news', 1)} | {fmt(delta(cells, 'ag_news'), True)} "
            f"| {np.mean([r['agree'] for r in sst]) * 100:.1f}% | {np.mean([r['train_agree'] for r in sst]) * 100:.1f}% "
            f"| {params} | {any_row['macs'] / 1e6:.1f} |"
        )
    if not_run:
        lines += ["", f"No runs yet: {', '.join(not_run)}."]
    lines += ["", "![sweep](sweep.png)", ""]
    os.makedirs(docs_dir, exist_ok=True)
    with open(os.path.join(docs_dir, "SWEEP.md"), "w") as f:
        f.write("\n".join(lines))
    _plot(table, teacher, os.path.join(docs_dir, "sweep.png"))
    print(f"[sweep] wrote {os.path.join(docs_dir, 'SWEEP.md')} ({len(table)} variants)")


def _findings(table, teacher):
    """Lines that answer issue #4's questions from the table: best variants and who meets the 1-point goal."""
    def params(cells):
        return (cells.get(("sst2", 0)) or next(iter(cells.values())))["params"]

    lines = []
    for task, title in zip(TASKS, ("SST-2", "AG News")):
        scored = [(mean_acc(cells, task), name) for name, cells in table.items()
                  if mean_acc(cells, task) is not None and params(cells) <= PARAMETER_BUDGET]
        best, name = max(scored)
        lines.append(f"- {title}: the best variant within {PARAMETER_BUDGET:,} parameters is `{name}`, {best:.2f}%, "
                     f"{teacher[task] - best:.2f} points behind the teacher (the best of {len(scored)} noisy means, "
                     "so flattered).")
    both = [name for name, cells in table.items()
            if all(mean_acc(cells, t) is not None and mean_acc(cells, t) >= teacher[t] - 1 for t in TASKS)]
    lines.append("- Within 1 point of the teacher on both tasks: " + (", ".join(f"`{n}`" for n in both) or "no variant") + ".")
    return lines


def _plot(table, teacher, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, task, title in zip(axes, TASKS, ("SST-2", "AG News")):
        for name, cells in table.items():
            value = mean_acc(cells, task)
            if value is None:
                continue
            row = cells.get((task, 0)) or next(iter(cells.values()))
            within = row["params"] <= PARAMETER_BUDGET
            ax.scatter(row["macs"] / 1e6, value, s=60 if name == "default" else 25,
                       c="C3" if name == "default" else ("C0" if within else "0.6"), zorder=4 if name == "default" else 3)
            if name in ("default", "k23_f96", "emb_32_k23_f128", "dilated_124", "vocab_11000", "aug"):
                ax.annotate(name, (row["macs"] / 1e6, value), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(teacher[task], color="k", ls="--", lw=1, label="teacher (MiniLM-L6)")
        ax.axhspan(teacher[task] - 1, teacher[task], color="C2", alpha=0.15, label="within 1 point (goal)")
        ax.set_xscale("log")
        ax.set_xticks([1, 2, 4, 8, 16], ["1", "2", "4", "8", "16"])
        ax.minorticks_off()
        ax.set_xlabel("convolution multiply-adds per text (millions, log)")
        ax.set_ylabel("distilled dev accuracy, mean of 2 seeds (%)")
        ax.set_title(f"{title}, N=1000: blue within 582k parameters, grey over, red default")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv):
    del argv
    if FLAGS.action == "export":
        from apps import common

        export(FLAGS.run_dir, FLAGS.data_dir or os.path.dirname(common.default_dataset()), FLAGS.arrays_dir)
    elif FLAGS.action == "run":
        run(FLAGS.variants, FLAGS.arrays_dir, FLAGS.results, FLAGS.worker, FLAGS.workers, FLAGS.steps_per_execution)
    else:
        report(FLAGS.results, FLAGS.docs_dir)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    define_flags()
    app.run(main)
