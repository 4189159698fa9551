"""The three configurations of a run: the teacher's, the student's and distillation's.

Each field has its one default here, with the measurement that chose it, and the
help text of the command-line flag that sets it: the binaries in `apps/` derive
their flags from these fields (`apps.common.define_config_flags`) instead of
restating them. Teacher fields are flags with a `teacher_` prefix unless the field
names its flag.

Example:

```python
from kdistill import config

student = config.StudentConfig(filters=96, kernel_sizes=(2, 3))
recipe = config.DistillConfig(epochs=4, seed=1)
teacher = config.TeacherConfig(handle="bert_base_en_uncased")
```
"""

import dataclasses

from kdistill import distiller, student as student_lib, teacher as teacher_lib


def option(default, help, flag=None, choices=None, bounds=None):
    """A config field with its default, its flag's help and, optionally, its flag's name, choices and
    (lower, upper) bounds, which the flag checks before any work starts."""
    metadata = {"help": help, "flag": flag, "choices": choices, "bounds": bounds}
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default=tuple(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(config_class, field):
    """The command-line flag that sets `field` of `config_class`."""
    if field.metadata.get("flag"):
        return field.metadata["flag"]
    return f"teacher_{field.name}" if config_class is TeacherConfig else field.name


def flag_fields(config_class):
    """The fields of `config_class` that a flag sets (those with help text)."""
    return [field for field in dataclasses.fields(config_class) if field.metadata.get("help")]


@dataclasses.dataclass
class TeacherConfig:
    handle: str = option(teacher_lib.OFFLINE_TEACHER, "keras-hub BERT preset, hf:// handle or local folder; "
                         "'minilm' is the bundled offline MiniLM-L6.", flag="teacher")
    epochs: int = option(5, "Teacher fine-tuning epochs (at least).")
    # Few labels make few steps: 5 epochs of N=100 is 35 updates, and MiniLM barely moves
    # (SST-2 dev 58.8%). Train for at least this many updates (N=100: 69.7%); N=1000 is unchanged.
    min_steps: int = option(200, "Fine-tune the teacher for at least this many updates (more epochs when labels "
                            "are few).")
    learning_rate: float = option(1e-4, "Teacher peak learning rate.")
    batch_size: int = option(16, "Teacher fine-tuning batch size.")
    sequence_length: int = option(128, "Teacher's maximum sequence length.", flag="max_seq_length")
    # MiniLM-L6 was trained as a sentence encoder on mean-pooled token vectors, not on its
    # [CLS] pooler. SST-2 dev, seed 0 (docs/RESULTS.md): N=100 73.2% (mean) vs 71.1% ([CLS]; an
    # earlier [CLS] run gave 62.3%: its few-label runs swing widely); N=1000 81.5% vs 81.7%.
    pooling: str = option("mean", "Teacher head: mean of the token vectors, or keras-hub's [CLS] pooler.",
                          choices=("mean", "cls"))
    # Fraction of the N labels held out to stop fine-tuning at the epoch that scores them best
    # (0 = train on all N for the full schedule). Off: holding out 10% at N=1000 (mean of seeds 0
    # and 1) left teachers below SetFit (SST-2 80.91% vs 82.40%, AG News 87.80% vs 88.55%) and
    # moved their students by -0.51 and +0.25 points; 100 held-out rows stop at a noisy epoch.
    validation_fraction: float = option(0.0, "Hold out this fraction of the labels and stop fine-tuning at the "
                                        "epoch that scores them best (0: train on all labels for every epoch).")
    # K teachers on the same labels (seeds seed, seed+1, ...), distilled from as one
    # (`teacher_model.TeacherEnsemble`). Off: 3 members at N=1000 (mean of 3 seeds, docs/gap/RESULTS.md)
    # gave students +0.96 points on SST-2 and +0.43 on AG News, for two more fine-tunes and labelling passes.
    ensemble: int = option(1, "Fine-tune this many teachers on the labels, with seeds --seed, --seed+1, ..., and "
                           "distil from the mixture of their predictions (1 = one teacher).")
    # SetFit's first stage (`contrastive.py`) before the usual fine-tuning: pairs of labelled texts of the
    # same class pulled together, of different classes pushed apart. Off: 4 pairs per text at SST-2 N=1000
    # (mean of 3 seeds, docs/ideas) raised the teacher 0.57 points (82.53%) but not its student (-0.19),
    # for about 4.5 more minutes of fine-tuning per teacher on 2 CPU cores.
    contrastive_pairs: int = option(0, "Before fine-tuning the classifier, fine-tune the sentence encoder "
                                    "contrastively on this many pairs per labelled text, as SetFit does (0 = off).")
    # Fields added after teachers were cached, with the value those runs had: left out of cache
    # keys while they hold it (`pipeline.cache_fields`), so those teachers and their benchmark cells stay valid.
    KEY_OMITS = {"validation_fraction": 0.0, "ensemble": 1, "contrastive_pairs": 0}

    def epochs_for(self, num_labels):
        steps_per_epoch = -(-num_labels // self.batch_size)
        return max(self.epochs, -(-self.min_steps // steps_per_epoch))


@dataclasses.dataclass
class StudentConfig:
    """Everything that shapes the student; saved with the run so it can be rebuilt."""

    # Pieces kept from the teacher's vocabulary (0 = all). SST-2 N=1000: 7,000 and 8,000 both
    # gave 79.24% dev; 7,000 keeps the student under 1/39 of MiniLM's parameters (564k).
    vocabulary_size: int = option(7000, "WordPiece pieces the student keeps (0 = all).")
    sequence_length: int = option(64, "Student's sequence length in pieces.")
    embedding_dim: int = option(64, "Student embedding width.")
    filters: int = option(128, "Conv1D filters per kernel width.")
    kernel_sizes: tuple = option((2, 3, 4, 5), "Conv1D kernel widths.")
    dropout: float = option(0.3, "Student dropout.")
    separable: bool = option(False, "Depthwise-separable convolutions (fewer weights and multiply-adds).")
    # Each branch pooled by its mean over the text as well as its max. N=1000, mean of seeds 0
    # and 1 (distilled dev accuracy, docs/RESULTS.md and its previous version): SST-2 79.64% vs
    # 79.42% (max alone), AG News 87.35% vs 86.75%.
    pooling: str = option("max_mean", "Pool each convolution over the text by its max, or by its max and its mean.",
                          choices=student_lib.POOLINGS)
    # "teacher_outputs" (Model2Vec: the fine-tuned teacher's vector of each piece read alone) puts sentiment in
    # the embeddings from the start, yet the distilled student does not gain: N=1000, mean of 3 seeds
    # (docs/student_ends), SST-2 -0.11 points, AG News -0.50, SST-2's pool cut to 3k +0.38.
    init_embeddings: str = option("teacher", "Start the student's embeddings from a PCA of the teacher's input "
                                  "embeddings, of the teacher's output for each piece read on its own (Model2Vec), "
                                  "or at random.", choices=("teacher", "teacher_outputs", "random"))
    # Shapes beyond the parallel branches (`student.conv_classifier`). The two-seed sweep
    # (docs/SWEEP.md) found dilated residual convolutions worth +0.17 on SST-2 and 0.00 on AG News.
    architecture: str = option("parallel", "Convolutions: parallel widths, a dilated residual stack, or parallel "
                               "widths with one more convolution over them.", choices=student_lib.ARCHITECTURES)
    dilations: tuple = option((1, 2, 4), "Dilation rates (--architecture=dilated).")
    hidden_units: int = option(0, "A ReLU layer of this width before the logits (0 = none).")
    # Words dropped from the student's input while it learns the teacher's answer on the whole text.
    # Off: SST-2 N=1000, mean of 3 seeds (docs/ideas), 10% gave +0.31 points (noise here) and 20% -0.57.
    token_dropout: float = option(0.0, "Zero this fraction of the student's token vectors while training, one draw "
                                  "per token (0 = off).")
    # What WordPiece splits words over. "teacher": the teacher's 30,522 pieces, then pieces the
    # student dropped become [UNK], so words split as the teacher splits them. "pruned": the
    # kept pieces alone, so the text-in model's in-graph tokenizer holds 7,000 pieces instead of
    # 30,522, but words whose pieces were dropped become one [UNK] (docs/EXPORT.md measures both).
    wordpiece: str = option("teacher", "Split words over the teacher's whole vocabulary (then unkept pieces -> "
                            "[UNK]) or over the kept pieces alone (a 4x smaller in-graph tokenizer in the text-in "
                            "model).", choices=("teacher", "pruned"))
    # Fields added after benchmark cells were cached, with the value those runs had: left out of
    # cache keys while they hold it (`pipeline.cache_fields`), so those cells stay valid.
    KEY_OMITS = {"architecture": "parallel", "dilations": (1, 2, 4), "hidden_units": 0, "wordpiece": "teacher",
                 "token_dropout": 0.0}

    def network_kwargs(self):
        """The `student.conv_classifier` arguments this config sets: one builder for every caller."""
        fields = {name: getattr(self, name) for name in student_lib.NETWORK_DEFAULTS}
        return {name: tuple(value) if isinstance(value, list) else value for name, value in fields.items()}


@dataclasses.dataclass
class DistillConfig:
    # SST-2, N=1000: dev peaks at 2-4 epochs; 8 cost the best SST-2 recipe 0.58 points (mean of 3 seeds, docs/gap).
    epochs: int = option(4, "Distillation epochs over the transfer set.")
    # A small transfer set makes few updates in `epochs`: AG News' 4,000 texts make 128 in 4
    # epochs. Train for at least this many updates (0 = `epochs` alone). Off: 16 epochs on AG
    # News N=1000 gave -0.25 points (mean of seeds 0 and 1, docs/RESULTS.md).
    min_steps: int = option(0, "Distil for at least this many updates, adding epochs when the transfer set is "
                            "small (0 = --epochs alone).")
    batch_size: int = option(128, "Distillation batch size.")
    learning_rate: float = option(2e-3, "Student peak learning rate (cosine decay).")
    # Measurements behind both defaults are in distiller.py.
    alpha: float = option(distiller.DEFAULT_ALPHA, "Weight of the label cross-entropy; 1-alpha weighs distillation.")
    temperature: float = option(distiller.DEFAULT_TEMPERATURE, "Softmax temperature of the KL distillation loss.")
    distillation_loss: str = option("kl", "Distillation loss.", choices=("kl", "mse"))
    # Perturbed copies of the transfer texts (augment.py) are added, labelled by the teacher,
    # until the transfer set holds about this many texts (0 = never). Off: one copy of SST-2's
    # 67k texts gave +0.86 points (N=1000, mean of 2 seeds) for 45k more texts to label. Small
    # pools gain most (docs/small_pool, N=1000, mean of 3 seeds): 60,000 gives SST-2's pool cut to
    # 3k +1.80 and cut to 10k +1.34, and AG News' 4k +0.07 for 55,600 more texts to label.
    augment_to: int = option(0, "Add perturbed copies of the transfer texts, labelled by the teacher, until the "
                             "transfer set holds this many texts (0 = no augmentation). 60000 helps pools of short texts under "
                             "about 30,000 (README: Small unlabelled pools).")
    # Tang et al. replace a word by one of the same part of speech; a draw from the whole corpus
    # can put a verb where an adjective was. Corpus: N=1000, mean of 3 seeds (docs/gap), SST-2's copies
    # alone scored 79.51% either way, and the part of speech cost 0.77 points in the best recipe.
    augment_replacement: str = option("corpus", "What replaces a word in a perturbed copy: a word of the corpus at "
                                      "its frequency, or one of the same part of speech (Tang et al., 2019).",
                                      choices=("corpus", "part_of_speech"))
    # Every text once. Off: drawing by length made SST-2's copies longer (13.4 words against 9.2) and
    # fewer of them repeats, yet cost the best SST-2 recipe 0.73 points (N=1000, mean of 3 seeds, docs/gap).
    augment_sources: str = option("every_text", "Which texts a round of copies perturbs: every text once, or as "
                                  "many drawn with probability proportional to their length in words.",
                                  choices=("every_text", "by_length"))
    seed: int = 0  # set by the data flag --seed, which also seeds the labelled sample
    weight_decay: float = option(0.0, "AdamW weight decay while distilling (0 = Adam).")
    vector_weight: float = option(0.0, "Weight of matching the teacher's sentence vector from the student's pooled "
                                  "features (cosine; 0 = off).")
    # The embedding-mixup term of distiller.py (MixKD, Liang et al. 2021). Off: N=1000, mean of 3
    # seeds, +0.31 points on SST-2, -0.10 on AG News, -0.91 added to the best SST-2 recipe (docs/gap).
    mixup_weight: float = option(0.0, "Weight of distilling mixes of two texts' student embeddings towards the "
                                 "same mix of the teacher's outputs (0 = off).")
    # Polyak averaging (Keras' `use_ema`): the student's final weights are the moving average of its
    # weights over the last ~1/(1-momentum) updates. Off: N=1000, mean of 3 seeds (docs/student_ends),
    # 0.999 cost SST-2 0.50 points and 0.97 AG News 0.10; the cosine schedule already ends near zero.
    ema_momentum: float = option(0.0, "Distil into an exponential moving average of the student's weights with "
                                 "this momentum; it replaces the weights when distillation ends (0 = off).",
                                 bounds=(0.0, 1.0))
    # After distillation, cross-entropy on the gold labels alone at `fine_tune_learning_rate`
    # (Ye et al. 2021).
    fine_tune_epochs: int = option(0, "Epochs on the gold labels alone after distillation (0 = none).")
    fine_tune_learning_rate: float = option(1e-4, "Learning rate of --fine_tune_epochs.")
    # A seeded sample of the unlabelled texts: measures how the gap grows as the pool shrinks.
    transfer_pool: int = option(0, "Distil from a seeded sample of this many unlabelled texts (0 = all).")
    KEY_OMITS = {"weight_decay": 0.0, "vector_weight": 0.0, "fine_tune_epochs": 0, "fine_tune_learning_rate": 1e-4,
                 "transfer_pool": 0, "mixup_weight": 0.0, "augment_replacement": "corpus",
                 "augment_sources": "every_text", "ema_momentum": 0.0}

    def epochs_for(self, num_rows):
        steps_per_epoch = max(-(-num_rows // self.batch_size), 1)
        return max(self.epochs, -(-self.min_steps // steps_per_epoch))
