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
override(configs, ABLATIONS["recipe_small"]).student.filters  # 96
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


# Variants of the default recipe run on one cell, so that a results document can say what each is worth; each
# entry here is shown by one (docs/RESULTS.md, docs/validation, docs/EXPORT.md). Variants share the cell's teacher
# and logits unless they change the teacher. A variant's `task` or `num_labels` picks another cell than the
# ablation task's largest N. Ideas measured and dropped are in docs/IDEAS.md, with the commit where their
# entries last lived.
ABLATIONS = {
    # The named recipes (`config.RECIPES`): what each gives up for its speed.
    "recipe_fast": config.RECIPES["fast"],
    "recipe_fast_ag_news": {**config.RECIPES["fast"], "task": "ag_news"},
    "recipe_small": config.RECIPES["small"],
    "recipe_small_ag_news": {**config.RECIPES["small"], "task": "ag_news"},
    # Issue #13. WordPiece over the 7,000 kept pieces alone: a 4x smaller text-in tokenizer (docs/EXPORT.md).
    "pruned_wordpiece": {"wordpiece": "pruned"},
    "pruned_wordpiece_ag_news": {"wordpiece": "pruned", "task": "ag_news"},
    # Issue #29: the `augment_to=auto` rule's threshold (20 words), measured on validation splits (docs/validation).
    # The short-text tasks without their copies; SUBJ (median 22 words, just above it) with them.
    "no_copies_sst5": {"augment_to": 0, "task": "sst5"},
    "no_copies_cr": {"augment_to": 0, "task": "cr"},
    # MPQA's entries measured the copies before the phrase rule, so they keep its 7,000 pieces and no words.
    "no_copies_mpqa": {"augment_to": 0, "vocabulary_size": 7000, "vocabulary_words": "off", "task": "mpqa"},
    "copies_60k_subj": {"augment_to": 60_000, "task": "subj"},
    # Issue #29: the student's vocabulary. 7,000 pieces counted on the task's text leave 3-10% of validation's
    # pieces as [UNK] on the small pools (MPQA 9.5%, SUBJ 7.7%, SST-5 5.6%, CR 3.3%): every piece of the
    # teacher's vocabulary instead (1.95M embedding weights instead of 448k). The default since: phrases (MPQA).
    "vocabulary_all_mpqa": {"vocabulary_size": 0, "vocabulary_words": "off", "task": "mpqa"},
    "vocabulary_all_subj": {"vocabulary_size": 0, "vocabulary_words": "off", "task": "subj"},
    "vocabulary_all_sst5": {"vocabulary_size": 0, "vocabulary_words": "off", "task": "sst5"},
    "vocabulary_all_cr": {"vocabulary_size": 0, "vocabulary_words": "off", "task": "cr"},
    # The same, with every whole word of that vocabulary labelled by the teacher as a text of its own.
    "vocabulary_words_mpqa": {"vocabulary_size": 0, "vocabulary_words": "on", "task": "mpqa"},
    "vocabulary_words_subj": {"vocabulary_size": 0, "vocabulary_words": "on", "task": "subj"},
    "vocabulary_words_sst5": {"vocabulary_size": 0, "vocabulary_words": "on", "task": "sst5"},
    "vocabulary_words_cr": {"vocabulary_size": 0, "vocabulary_words": "on", "task": "cr"},
    # MPQA with the recipe before the phrase rule: 7,000 pieces and no vocabulary words.
    "vocabulary_7000_mpqa": {"vocabulary_size": 7000, "vocabulary_words": "off", "task": "mpqa"},
    # Issue #29: more copies than the auto rule's 60,000 for the smallest pools.
    "copies_134k_cr": {"augment_to": 134_000, "task": "cr"},
    "copies_134k_mpqa": {"augment_to": 134_000, "vocabulary_size": 7000, "vocabulary_words": "off", "task": "mpqa"},
    # Issue #29: the distillation settings chosen on SST-2 and AG News (2 and 4 classes), on 150 intents, on
    # validation rows with one teacher a seed (docs/validation/clinc150_seed0; the temperatures on three seeds in
    # docs/validation/clinc150; CR's, MPQA's, SUBJ's and SST-5's, one seed each, in docs/validation/temperature;
    # SST-2's, three seeds and three teachers, in docs/validation/sst2_buckets_temperature). The softer targets of
    # temperature 2 spread a 150-way answer over the classes. They chose the temperature's auto rule
    # (`config.MANY_CLASSES`), which gives CLINC150 temperature 1 since: its documents were made when 2 was every
    # task's default.
    "temperature_4_clinc150": {"temperature": 4.0, "task": "clinc150"},
    "epochs_8_clinc150": {"epochs": 8, "task": "clinc150"},
    "alpha_0_clinc150": {"alpha": 0.0, "task": "clinc150"},
    "temperature_1_clinc150": {"temperature": 1.0, "task": "clinc150"},
    "temperature_0.5_clinc150": {"temperature": 0.5, "task": "clinc150"},
    "temperature_1_sst5": {"temperature": 1.0, "task": "sst5"},
    "temperature_1_cr": {"temperature": 1.0, "task": "cr"},
    "temperature_1_mpqa": {"temperature": 1.0, "task": "mpqa"},
    "temperature_1_subj": {"temperature": 1.0, "task": "subj"},
    "temperature_1_sst2": {"temperature": 1.0, "task": "sst2"},
    # Issue #29: the gold fine-tune after distillation (chosen on SST-2 and AG News) where the teacher is far
    # ahead of the labels (CR) or the classes are more (docs/validation/temperature).
    "fine_tune_0_cr": {"fine_tune_epochs": 0, "task": "cr"},
    "fine_tune_0_subj": {"fine_tune_epochs": 0, "task": "subj"},
    "fine_tune_0_sst5": {"fine_tune_epochs": 0, "task": "sst5"},
    # Issue #29: SUBJ's pool (8k texts of median 22 words, no copies) gives 280 updates in 4 epochs
    # (docs/validation/subj).
    "epochs_8_subj": {"epochs": 8, "task": "subj"},
    # Issue #29: SST-5's student fits its own transfer set poorly (it gives the teacher's label on 80% of the pool
    # texts it trained on; CR's and SUBJ's 97-98%): a wider student, 4x and 9x the convolutions' multiply-adds.
    # wide_sst5: mean +0.9 over 3 seeds, inside noise, at 4x the latency (docs/validation/student_width).
    "wide_sst5": {"filters": 256, "embedding_dim": 128, "task": "sst5"},
    "wider_sst5": {"filters": 384, "embedding_dim": 192, "task": "sst5"},
    # Issue #29: the student's window on longer texts. AG News' pieces: median 51, 95th percentile 80, 15% of its
    # texts past the default 64 (the other tasks here: at most 1.6%).
    "sequence_80_ag_news": {"sequence_length": 80, "task": "ag_news"},
    "sequence_128_ag_news": {"sequence_length": 128, "task": "ag_news"},
    "copies_134k_clinc150": {"augment_to": 134_000, "task": "clinc150"},
    "batch_64_clinc150": {"batch_size": 64, "task": "clinc150"},
    "vocabulary_words_clinc150": {"vocabulary_size": 0, "vocabulary_words": "on", "task": "clinc150"},
    # Issue #28: distillation batches drawn from texts of similar length (a CPU's time): SST-2 validation, three
    # seeds (docs/validation/length_buckets).
    "length_buckets": {"length_buckets": True},
    # Both at once, on SST-2's validation rows (docs/validation/sst2_buckets_temperature: -0.43 on three seeds).
    "temperature_1_length_buckets_sst2": {"temperature": 1.0, "length_buckets": True, "task": "sst2"},
}
# The ones `apps.benchmark` runs unless told otherwise: the named recipes beside the default.
DEFAULT_ABLATIONS = ("recipe_fast", "recipe_fast_ag_news", "recipe_small", "recipe_small_ag_news")


def override(configs, overrides):
    """`configs` with some fields replaced; keys `teacher_<field>` are TeacherConfig fields."""
    teacher, student, distill = config.with_changes((configs.teacher, configs.student, configs.distill), overrides)
    return dataclasses.replace(configs, teacher=teacher, student=student, distill=distill)
