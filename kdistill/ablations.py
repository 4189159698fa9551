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
    # A small pool enlarged as far as Tang et al. went (n_iter 20): 3,000 texts and the 1,000
    # labelled grow by 14 copies each, 10,000 and the 1,000 by 5.
    "pool_3k_augment_60k": {"transfer_pool": 3_000, "augment_to": 60_000},
    "pool_10k_augment_60k": {"transfer_pool": 10_000, "augment_to": 60_000},
    "augment_60k_ag_news": {"augment_to": 60_000, "task": "ag_news"},  # AG News' whole pool is about 4,000
    # MixKD was proposed for scarce data: mixes of two texts are new transfer points without labelling.
    "pool_3k_mixup": {"transfer_pool": 3_000, "mixup_weight": 1.0},
    "pool_3k_augment_60k_mixup": {"transfer_pool": 3_000, "augment_to": 60_000, "mixup_weight": 1.0},
    # 3,000 texts and the 1,000 labelled make 128 updates in 4 epochs; the full pool makes 2,100.
    "pool_3k_min_steps": {"transfer_pool": 3_000, "min_steps": 2_100},
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
    # The best SST-2 recipe distilled for 8 epochs instead of 4: the sweep's best augmented variant (docs/SWEEP.md).
    "teacher_ensemble_3_augment_134k_gold_fine_tune_epochs_8": {
        "teacher_ensemble": 3, "augment_to": 134_000, "fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4,
        "epochs": 8},
    # Tang et al.'s replacement by a word of the same part of speech, alone and in the best SST-2 recipe.
    "augment_134k_part_of_speech": {"augment_to": 134_000, "augment_replacement": "part_of_speech"},
    "teacher_ensemble_3_augment_134k_part_of_speech_gold_fine_tune": {
        "teacher_ensemble": 3, "augment_to": 134_000, "augment_replacement": "part_of_speech",
        "fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4},
    # Copies drawn from the texts by their length in words: SST-2's pool is phrases (median 7 words), its dev
    # sentences (median 19).
    "teacher_ensemble_3_augment_134k_by_length_gold_fine_tune": {
        "teacher_ensemble": 3, "augment_to": 134_000, "augment_sources": "by_length",
        "fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4},
    # Mixes of two texts' student embeddings distilled towards the mix of their teacher outputs (MixKD).
    "mixup": {"mixup_weight": 1.0},
    "mixup_ag_news": {"mixup_weight": 1.0, "task": "ag_news"},
    "teacher_ensemble_3_augment_134k_gold_fine_tune_mixup": {
        "teacher_ensemble": 3, "augment_to": 134_000, "fine_tune_epochs": 3, "fine_tune_learning_rate": 2e-4,
        "mixup_weight": 1.0},
    # Words dropped from the student's input (10% or 20% of tokens), targets from the whole text.
    "token_dropout_0.1": {"token_dropout": 0.1},
    "token_dropout_0.2": {"token_dropout": 0.2},
    "token_dropout_0.1_ag_news": {"token_dropout": 0.1, "task": "ag_news"},
    # SetFit's contrastive stage before the teacher's fine-tuning, 4 pairs per labelled text (SetFit's default: 40).
    "teacher_contrastive_4": {"teacher_contrastive_pairs": 4},
    "teacher_contrastive_4_ag_news": {"teacher_contrastive_pairs": 4, "task": "ag_news"},
    # Polyak averaging of the student's weights (Keras' `use_ema`) over about its last 1,000 updates, two of
    # the default recipe's four SST-2 epochs; AG News makes 32 updates an epoch.
    "ema_0.999": {"ema_momentum": 0.999},
    "ema_0.97_ag_news": {"ema_momentum": 0.97, "task": "ag_news"},
    # The student's embeddings from the fine-tuned teacher's vector of each piece read on its own (Model2Vec),
    # not from its input embeddings: random ones cost 1.20 points (docs/SWEEP.md), so the start matters.
    "teacher_output_embeddings": {"init_embeddings": "teacher_outputs"},
    "teacher_output_embeddings_ag_news": {"init_embeddings": "teacher_outputs", "task": "ag_news"},
    # A small pool has few transfer texts to move the embeddings from where they start.
    "pool_3k_teacher_output_embeddings": {"transfer_pool": 3_000, "init_embeddings": "teacher_outputs"},
    "pool_3k_augment_60k_teacher_output_embeddings": {"transfer_pool": 3_000, "augment_to": 60_000,
                                                      "init_embeddings": "teacher_outputs"},
    # Issue #13. WordPiece over the 7,000 kept pieces alone: a 4x smaller text-in tokenizer.
    "pruned_wordpiece": {"wordpiece": "pruned"},
    "pruned_wordpiece_ag_news": {"wordpiece": "pruned", "task": "ag_news"},
}
# The best SST-2 recipe measured (N=1000, mean of 3 seeds, docs/gap): +1.68 points over the default
# recipe, for three teachers instead of one and twice the texts to label. `make demo` runs it.
# `augment_to` is sized for SST-2's 67k texts: AG News' 4,000 gain nothing from copies (+0.07 at 60k,
# docs/small_pool) and spend minutes labelling them.
DEMO_RECIPE = "teacher_ensemble_3_augment_134k_gold_fine_tune"
# The ones `apps.benchmark` runs unless told otherwise: what trades accuracy for the batch-1
# speed-up, and the ideas aimed at the teacher gap. Earlier RESULTS.md runs measured alpha, MSE,
# random embeddings, the full vocabulary and the [CLS] teacher head; `--ablations` reruns any of them.
DEFAULT_ABLATIONS = (
    "temperature_4", "kernels_2_3_filters_96", "kernels_2_3_filters_64", "kernels_3", "augment_134k",
    "kernels_2_3_filters_96_ag_news", "kernels_2_3_filters_64_ag_news", "kernels_3_ag_news", "augment_20k_ag_news",
    "16_epochs_ag_news", "sequence_128_ag_news", "teacher_early_stopping", "teacher_early_stopping_ag_news",
    "teacher_2_epochs", "teacher_2_epochs_ag_news",
)


def config_field(key):
    """`(config class, field name)` that the recipe key `key` sets, or None: `teacher_<field>` names a
    TeacherConfig field, any other key a StudentConfig or DistillConfig one."""
    if key.startswith("teacher_") and key[len("teacher_"):] in config.TeacherConfig.__dataclass_fields__:
        return config.TeacherConfig, key[len("teacher_"):]
    for config_class in (config.StudentConfig, config.DistillConfig):
        if key in config_class.__dataclass_fields__:
            return config_class, key
    return None


def override(configs, overrides):
    """`configs` with some fields replaced; keys `teacher_<field>` are TeacherConfig fields."""
    unknown = sorted(key for key in overrides if config_field(key) is None)
    if unknown:
        raise ValueError(f"unknown config fields {unknown}")
    changes = {config.TeacherConfig: {}, config.StudentConfig: {}, config.DistillConfig: {}}
    for key, value in overrides.items():
        config_class, name = config_field(key)
        changes[config_class][name] = value
    return dataclasses.replace(
        configs, teacher=dataclasses.replace(configs.teacher, **changes[config.TeacherConfig]),
        student=dataclasses.replace(configs.student, **changes[config.StudentConfig]),
        distill=dataclasses.replace(configs.distill, **changes[config.DistillConfig]),
    )
