"""Label efficiency and cost in one command: writes docs/RESULTS.md, docs/results.json and plots.

    python -m apps.benchmark                                   # the full grid (about 3.4 h on 2 cores, cold)
    python -m apps.benchmark --num_labels=100,1000 --seeds=0   # a quicker grid

Cells, teachers and teacher logits are cached under --out_dir, so a rerun only computes what changed.
The cells are kdistill.benchmark's (variants from kdistill.ablations), the cost table kdistill.cost's,
and kdistill.benchmark_report writes the document.
"""

import os
import sys

from absl import flags

from kdistill import ablations, benchmark, benchmark_report, cli
from kdistill.apps import common

FLAGS = flags.FLAGS


def define_flags():
    common.define_teacher_flags()
    common.define_student_flags()
    common.define_labelling_flag()
    flags.DEFINE_list("tasks", ["sst2", "ag_news"], "Task names: folders of --data_dir, or name=spec pairs.")
    flags.DEFINE_string("data_dir", os.path.dirname(common.default_dataset()),
                        "Where the task folders live.")
    flags.DEFINE_list("num_labels", ["1000"], "Labelled-set sizes N (docs/appendix/fast_recipe has 100 and 300 too).")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the labelled sample and training.")
    flags.DEFINE_integer("max_unlabelled", None, "Cap on unlabelled texts per cell.")
    flags.DEFINE_integer("validation_rows", 0, "Measure on this many rows carved from train (outside the labelled "
                         "sample and the pool) instead of dev: where recipes and rules are chosen.")
    flags.DEFINE_string("out_dir", "runs/benchmark", "Cache of cells, teachers and logits.")
    flags.DEFINE_string("docs_dir", "docs", "Where RESULTS.md, results.json and the plots go.")
    flags.DEFINE_bool("cost", True, "The cost table (exports and times the teachers and the student); kept from "
                      "--docs_dir's results.json while its cell is unchanged, unless --remeasure_cost.")
    flags.DEFINE_bool("remeasure_cost", False, "Measure the cost table again even when its cell is unchanged (on "
                      "another machine, or after a change to what it times).")
    flags.DEFINE_string("cost_task", "sst2", "The task whose N=1000 seed-0 student and teacher the cost table uses.")
    flags.DEFINE_integer("latency_rows", 200, "Dev sentences timed at batch 1 for each model.")
    flags.DEFINE_list("ablations", list(ablations.DEFAULT_ABLATIONS),
                      "One-change-at-a-time variants of the recipe to run "
                      "(largest N unless the variant names one, first seed); names from kdistill.ablations.ABLATIONS, "
                      "empty for none.")
    flags.DEFINE_list("restore_from", [], "More results.json files whose cells (and cost table) are restored beside "
                      "--docs_dir's, unless their key changed: a grid computed in parts (--tasks), one session each, "
                      "then written whole.")
    flags.DEFINE_string("ablation_task", "sst2", "The task the ablations run on.")
    flags.DEFINE_list("ablation_seeds", None, "Seeds each ablation runs with (default: all of --seeds).")


def task_specs():
    specs = {}
    for task in FLAGS.tasks:
        name, _, spec = task.partition("=")
        specs[name] = spec or os.path.join(FLAGS.data_dir, name)
    return specs


def main(argv):
    del argv
    configs = ablations.Configs(common.teacher_config(), common.student_config(), common.distill_config(),
                                FLAGS.max_unlabelled, FLAGS.validation_rows, FLAGS.teacher_runtime)
    specs = task_specs()
    records = [os.path.join(FLAGS.docs_dir, "results.json")] + FLAGS.restore_from
    restored = sum(benchmark.restore_cells(path, FLAGS.out_dir) for path in records)
    if restored:
        print(f"[benchmark] {restored} cells restored from {', '.join(records)}; those whose key still "
              "matches are not run again", flush=True)
    stopwatch = benchmark.Stopwatch()
    rows = [
        benchmark.quality_cell(task, spec, int(n), int(seed), FLAGS.out_dir, configs)
        for task, spec in specs.items() for n in FLAGS.num_labels for seed in FLAGS.seeds
    ]
    stopwatch.lap("quality")
    results = {"quality": rows}
    if FLAGS.ablations:
        n = max(int(n) for n in FLAGS.num_labels)
        seeds = [int(seed) for seed in FLAGS.ablation_seeds or FLAGS.seeds]
        results["ablations"], results["ablation_defaults"] = benchmark.ablation_cells(
            specs, FLAGS.ablation_task, n, seeds, FLAGS.out_dir, configs, FLAGS.ablations,
            latency_rows=FLAGS.latency_rows,
        )
        stopwatch.lap("ablations")
    if FLAGS.cost:
        n, seed = max(int(n) for n in FLAGS.num_labels), int(FLAGS.seeds[0])
        results["cost"] = benchmark.cost_table(
            FLAGS.cost_task, specs[FLAGS.cost_task], n, seed, FLAGS.out_dir, configs,
            records, FLAGS.remeasure_cost, FLAGS.latency_rows,
        )
        stopwatch.lap("cost")
    results["run_seconds"] = stopwatch.laps
    command = "python -m apps.benchmark " + " ".join(sys.argv[1:])
    notes = ""
    if FLAGS.validation_rows:
        notes = (f"**Validation, not dev.** Every accuracy here (headed \"dev\") is measured on up to "
                 f"{FLAGS.validation_rows:,} rows of train carved out as validation (stratified, outside the labelled "
                 "sample and the unlabelled pool; at most a quarter of the pool), not on the task's dev split: "
                 "recipes and rules are chosen here, and dev is reported once, in docs/RESULTS.md.")
    benchmark_report.write_results(results, FLAGS.docs_dir, command.strip(), notes=notes)
    print(f"wrote {os.path.join(FLAGS.docs_dir, 'RESULTS.md')}")


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
