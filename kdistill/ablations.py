"""The ablation registry: the benchmark's configs and the one-change variants of its recipe.

`Configs` bundles the three stage configs a benchmark cell runs with (teacher,
student, distillation) and the cap on unlabelled texts. `ABLATIONS` names the
variants of the default recipe, each a handful of config fields to change, and
`override` applies one to a `Configs`. A field named `teacher_<field>` changes
the teacher's config; a variant's `task` or `num_labels` picks the cell it runs
on instead (no config fields: `benchmark.ablation_cells` takes them out first).

The cell runner (`benchmark.py`) trains and caches the variants; the report
(`benchmark_report.py`) shows each beside the default recipe and its change.

Example:

```python
configs = Configs(config.TeacherConfig(), config.StudentConfig(), config.DistillConfig())
override(configs, ABLATIONS["temperature_4"]).distill.temperature  # 4.0
```
"""

import dataclasses

from kdistill import config


@dataclasses.dataclass
class Configs:
    teacher: config.TeacherConfig
    student: config.StudentConfig
    distill: config.DistillConfig
    max_unlabelled: int = None
    # Rows of train carved out to stand in for dev (`data.load`): recipes are chosen on them, not on dev.
    validation_rows: int = 0
    # How the teacher labels the transfer set (`teacher.labelling_runtime`).
    teacher_runtime: str = "auto"


# Variants of the default recipe, each changing one thing, run on one cell so that
# RESULTS.md can say what each idea is worth. They share the cell's teacher and logits.
# A variant's `task` or `num_labels` picks another cell than the ablation task's largest N.
ABLATIONS = {
    "temperature_4": {"temperature": 4.0},
    "separable": {"separable": True},  # depthwise-separable convolutions: ~3x fewer multiply-adds
    # Cheaper convolutions for the batch-1 speed-up: fewer and narrower kernels.
    "kernels_2_3_filters_96": {"kernel_sizes": (2, 3), "filters": 96},
    "kernels_2_3_filters_96_ag_news": {"kernel_sizes": (2, 3), "filters": 96, "task": "ag_news"},
    "kernels_2_3_filters_64": {"kernel_sizes": (2, 3), "filters": 64},
    "kernels_2_3_filters_64_ag_news": {"kernel_sizes": (2, 3), "filters": 64, "task": "ag_news"},
    "kernels_3": {"kernel_sizes": (3,)},
    "kernels_3_ag_news": {"kernel_sizes": (3,), "task": "ag_news"},
    # The teacher fine-tuned for two epochs instead of five: is it trained too long on few labels?
    "teacher_2_epochs": {"teacher_epochs": 2, "teacher_min_steps": 0},
    "teacher_2_epochs_ag_news": {"teacher_epochs": 2, "teacher_min_steps": 0, "task": "ag_news"},
    # Perturbed copies (augment.py) labelled by the teacher: SST-2's 67k texts plus 45k copies
    # (a perturbation often leaves a short phrase unchanged), AG News' 4,000 plus 16,000.
    "augment_134k": {"augment_to": 134_000},
    "augment_20k_ag_news": {"augment_to": 20_000, "task": "ag_news"},
    # 13% of AG News texts are longer than 64 pieces (the teacher reads 128).
    "sequence_128_ag_news": {"sequence_length": 128, "task": "ag_news"},
    # A short fine-tune on the gold labels after distillation (Ye et al. 2021).
    "gold_fine_tune": {"fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4},
    "gold_fine_tune_ag_news": {"fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4, "task": "ag_news"},
    # The gap against the size of the unlabelled pool: SST-2's 66k texts cut to a seeded sample.
    "pool_3k": {"transfer_pool": 3_000},
    "pool_10k": {"transfer_pool": 10_000},
    "pool_30k": {"transfer_pool": 30_000},
    "pool_3k_augment_20k": {"transfer_pool": 3_000, "augment_to": 20_000},
    "pool_10k_augment_20k": {"transfer_pool": 10_000, "augment_to": 20_000},
    # A small pool enlarged as far as Tang et al. went (n_iter 20): 3,000 texts and the 1,000
    # labelled grow by 14 copies each, 10,000 and the 1,000 by 5.
    "pool_3k_augment_60k": {"transfer_pool": 3_000, "augment_to": 60_000},
    "pool_10k_augment_60k": {"transfer_pool": 10_000, "augment_to": 60_000},
    "augment_60k_ag_news": {"augment_to": 60_000, "task": "ag_news"},  # AG News' whole pool is about 4,000
    # Three teachers on the same labels (seeds s, s+1, s+2), distilled from as one; the gap is to the ensemble.
    "teacher_ensemble_3": {"teacher_ensemble": 3},
    "teacher_ensemble_3_ag_news": {"teacher_ensemble": 3, "task": "ag_news"},
    # The ensemble's targets for the cheaper student (2 and 3 wide, 96 filters); same members and logits.
    "teacher_ensemble_3_kernels_2_3_filters_96": {"teacher_ensemble": 3, "kernel_sizes": (2, 3), "filters": 96},
    "teacher_ensemble_3_kernels_2_3_filters_96_ag_news": {"teacher_ensemble": 3, "kernel_sizes": (2, 3),
                                                          "filters": 96, "task": "ag_news"},
    # The ensemble's targets on SST-2's pool plus its perturbed copies: the two largest SST-2 gains together.
    "teacher_ensemble_3_augment_134k": {"teacher_ensemble": 3, "augment_to": 134_000},
    # The best recipe of each task so far, then the short fine-tune on the gold labels (+0.2 to +0.5 alone).
    "teacher_ensemble_3_augment_134k_gold_fine_tune": {"teacher_ensemble": 3, "augment_to": 134_000,
                                                       "fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4},
    "teacher_ensemble_3_gold_fine_tune_ag_news": {"teacher_ensemble": 3, "fine_tune_epochs": 3,
                                                  "fine_tune_learning_rate": 2e-4, "task": "ag_news"},
    # The best recipe of each task on the cheaper student (2 and 3 wide, 96 filters).
    "teacher_ensemble_3_augment_134k_gold_fine_tune_kernels_2_3_filters_96": {
        "teacher_ensemble": 3, "augment_to": 134_000, "fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4,
        "kernel_sizes": (2, 3), "filters": 96},
    "teacher_ensemble_3_gold_fine_tune_kernels_2_3_filters_96_ag_news": {
        "teacher_ensemble": 3, "fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4, "kernel_sizes": (2, 3),
        "filters": 96, "task": "ag_news"},
    # Five teachers instead of three in the best SST-2 recipe: members 3 and 4 fine-tuned with seeds s+3, s+4.
    "teacher_ensemble_5_augment_134k_gold_fine_tune": {"teacher_ensemble": 5, "augment_to": 134_000,
                                                       "fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4},
    # The best SST-2 recipe distilled for 8 epochs instead of 4: the sweep's best augmented variant (docs/appendix/SWEEP.md).
    "teacher_ensemble_3_augment_134k_gold_fine_tune_epochs_8": {
        "teacher_ensemble": 3, "augment_to": 134_000, "fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4,
        "epochs": 8},
    # Issue #13. WordPiece over the 7,000 kept pieces alone: a 4x smaller text-in tokenizer.
    "pruned_wordpiece": {"wordpiece": "pruned"},
    "pruned_wordpiece_ag_news": {"wordpiece": "pruned", "task": "ag_news"},
    # Issue #29: the `augment_to=auto` rule's threshold (20 words), measured on validation splits. The short-text
    # tasks without their copies; SUBJ (median 22 words, just above it) with them.
    "no_copies_sst5": {"augment_to": 0, "task": "sst5"},
    "no_copies_cr": {"augment_to": 0, "task": "cr"},
    "no_copies_mpqa": {"augment_to": 0, "task": "mpqa"},
    "no_copies_clinc150": {"augment_to": 0, "task": "clinc150"},
    "copies_60k_subj": {"augment_to": 60_000, "task": "subj"},
}
# The ones `apps.benchmark` runs unless told otherwise: what trades accuracy for the batch-1
# speed-up, and the ideas aimed at the teacher gap. Ideas measured as no gain are in docs/IDEAS.md.
DEFAULT_ABLATIONS = (
    "temperature_4", "kernels_2_3_filters_96", "kernels_2_3_filters_64", "kernels_3", "augment_134k",
    "kernels_2_3_filters_96_ag_news", "kernels_2_3_filters_64_ag_news", "kernels_3_ag_news", "augment_20k_ag_news",
    "sequence_128_ag_news", "teacher_2_epochs", "teacher_2_epochs_ag_news",
)


def override(configs, overrides):
    """`configs` with some fields replaced; keys `teacher_<field>` are TeacherConfig fields."""
    teacher, student, distill = config.with_changes((configs.teacher, configs.student, configs.distill), overrides)
    return dataclasses.replace(configs, teacher=teacher, student=student, distill=distill)
