"""Flags shared by the kdistill binaries and the configs they build."""

import os

from absl import flags

from kdistill import distribute, pipeline, student as student_lib, training

FLAGS = flags.FLAGS


def define_data_flags():
    flags.DEFINE_string("dataset", default_dataset(), "tfds:<name> or a local folder/file of labelled text.")
    flags.DEFINE_integer("num_labels", 1000, "Labelled rows to keep from train (stratified, seeded).")
    flags.DEFINE_integer("seed", 0, "Seeds the labelled sample, the unlabelled cap and training.")
    flags.DEFINE_integer("max_unlabelled", None, "Keep at most this many unlabelled texts.")
    flags.DEFINE_string("unlabelled", None, "Extra unlabelled text: a .txt file (one per line) or a labelled file.")
    flags.DEFINE_string("encoding", "utf-8", "Text encoding of local data files (latin-1 for many older corpora).")
    flags.DEFINE_string("out_dir", "runs/default", "Run folder for models, caches and metrics.")
    flags.DEFINE_string("teacher_dir", None, "Folder of the fine-tuned teacher (default <out_dir>/teacher).")


def define_teacher_flags():
    defaults = pipeline.TeacherConfig()
    flags.DEFINE_string("teacher", defaults.handle, "keras-hub BERT preset, hf:// handle or local folder; "
                        "'minilm' is the bundled offline MiniLM-L6.")
    flags.DEFINE_integer("teacher_epochs", defaults.epochs, "Teacher fine-tuning epochs (at least).")
    flags.DEFINE_integer("teacher_min_steps", defaults.min_steps,
                         "Fine-tune the teacher for at least this many updates (more epochs when labels are few).")
    flags.DEFINE_float("teacher_learning_rate", defaults.learning_rate, "Teacher peak learning rate.")
    flags.DEFINE_integer("teacher_batch_size", defaults.batch_size, "Teacher fine-tuning batch size.")
    flags.DEFINE_float("teacher_validation_fraction", defaults.validation_fraction,
                       "Hold out this fraction of the labels and stop fine-tuning at the epoch that scores them best "
                       "(0: train on all labels for every epoch).")
    flags.DEFINE_integer("max_seq_length", defaults.sequence_length, "Teacher's maximum sequence length.")
    flags.DEFINE_enum("teacher_pooling", defaults.pooling, ["mean", "cls"],
                      "Teacher head: mean of the token vectors, or keras-hub's [CLS] pooler.")


def define_student_flags():
    student, distill = training.StudentConfig(), training.DistillConfig()
    flags.DEFINE_integer("epochs", distill.epochs, "Distillation epochs over the transfer set.")
    flags.DEFINE_integer("min_steps", distill.min_steps, "Distil for at least this many updates, adding epochs "
                         "when the transfer set is small (0 = --epochs alone).")
    flags.DEFINE_integer("batch_size", distill.batch_size, "Distillation batch size.")
    flags.DEFINE_float("learning_rate", distill.learning_rate, "Student peak learning rate (cosine decay).")
    flags.DEFINE_float("alpha", distill.alpha, "Weight of the label cross-entropy; 1-alpha weighs distillation.")
    flags.DEFINE_float("temperature", distill.temperature, "Softmax temperature of the KL distillation loss.")
    flags.DEFINE_enum("distillation_loss", distill.distillation_loss, ["kl", "mse"], "Distillation loss.")
    flags.DEFINE_integer("augment_to", distill.augment_to, "Add perturbed copies of the transfer texts, labelled by "
                         "the teacher, until the transfer set holds this many texts (0 = no augmentation).")
    flags.DEFINE_integer("vocabulary_size", student.vocabulary_size, "WordPiece pieces the student keeps (0 = all).")
    flags.DEFINE_integer("sequence_length", student.sequence_length, "Student's sequence length in pieces.")
    flags.DEFINE_integer("embedding_dim", student.embedding_dim, "Student embedding width.")
    flags.DEFINE_integer("filters", student.filters, "Conv1D filters per kernel width.")
    flags.DEFINE_list("kernel_sizes", [str(k) for k in student.kernel_sizes], "Conv1D kernel widths.")
    flags.DEFINE_float("dropout", student.dropout, "Student dropout.")
    flags.DEFINE_bool("separable", student.separable, "Depthwise-separable convolutions (fewer weights and multiply-adds).")
    flags.DEFINE_enum("pooling", student.pooling, list(student_lib.POOLINGS),
                      "Pool each convolution over the text by its max, or by its max and its mean.")
    flags.DEFINE_enum("init_embeddings", student.init_embeddings, ["teacher", "random"],
                      "Start the student's embeddings from a PCA of the teacher's, or at random.")
    flags.DEFINE_enum("architecture", student.architecture, list(student_lib.ARCHITECTURES),
                      "Convolutions: parallel widths, a dilated residual stack, or parallel widths with one more "
                      "convolution over them.")
    flags.DEFINE_list("dilations", [str(d) for d in student.dilations], "Dilation rates (--architecture=dilated).")
    flags.DEFINE_integer("hidden_units", student.hidden_units, "A ReLU layer of this width before the logits (0 = none).")
    flags.DEFINE_enum("wordpiece", student.wordpiece, ["teacher", "pruned"], "Split words over the teacher's whole "
                      "vocabulary (then unkept pieces -> [UNK]) or over the kept pieces alone (a 4x smaller "
                      "in-graph tokenizer in the text-in model).")
    flags.DEFINE_float("weight_decay", distill.weight_decay, "AdamW weight decay while distilling (0 = Adam).")
    flags.DEFINE_float("vector_weight", distill.vector_weight, "Weight of matching the teacher's sentence vector from "
                       "the student's pooled features (cosine; 0 = off).")
    flags.DEFINE_integer("fine_tune_epochs", distill.fine_tune_epochs,
                         "Epochs on the gold labels alone after distillation (0 = none).")
    flags.DEFINE_float("fine_tune_learning_rate", distill.fine_tune_learning_rate, "Learning rate of --fine_tune_epochs.")
    flags.DEFINE_integer("transfer_pool", distill.transfer_pool,
                         "Distil from a seeded sample of this many unlabelled texts (0 = all).")


def default_dataset():
    """`$KDISTILL_DATA/sst2`, else `../shared/data/sst2` from the working directory, else tfds' SST-2.

    One rule for a checkout and an installed package alike: it looks where the command runs,
    never beside the code, which an installed package keeps in site-packages.
    """
    root = os.environ.get("KDISTILL_DATA") or os.path.join("..", "shared", "data")
    local = os.path.join(root, "sst2")
    return os.path.abspath(local) if os.path.isdir(local) else "tfds:glue/sst2"


def splits():
    return pipeline.load_splits(
        FLAGS.dataset, FLAGS.num_labels, FLAGS.seed, FLAGS.max_unlabelled, FLAGS.unlabelled, FLAGS.encoding
    )


def teacher_dir():
    return FLAGS.teacher_dir or os.path.join(FLAGS.out_dir, "teacher")


def teacher_config():
    return pipeline.TeacherConfig(
        handle=FLAGS.teacher, epochs=FLAGS.teacher_epochs, min_steps=FLAGS.teacher_min_steps,
        learning_rate=FLAGS.teacher_learning_rate, validation_fraction=FLAGS.teacher_validation_fraction,
        batch_size=FLAGS.teacher_batch_size, sequence_length=FLAGS.max_seq_length, pooling=FLAGS.teacher_pooling,
    )


def student_config():
    return training.StudentConfig(
        vocabulary_size=FLAGS.vocabulary_size, sequence_length=FLAGS.sequence_length,
        embedding_dim=FLAGS.embedding_dim, filters=FLAGS.filters,
        kernel_sizes=tuple(int(k) for k in FLAGS.kernel_sizes), dropout=FLAGS.dropout,
        separable=FLAGS.separable, pooling=FLAGS.pooling, init_embeddings=FLAGS.init_embeddings,
        architecture=FLAGS.architecture, dilations=tuple(int(d) for d in FLAGS.dilations),
        hidden_units=FLAGS.hidden_units, wordpiece=FLAGS.wordpiece,
    )


def distill_config():
    return training.DistillConfig(
        epochs=FLAGS.epochs, min_steps=FLAGS.min_steps, batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
        alpha=FLAGS.alpha, temperature=FLAGS.temperature, distillation_loss=FLAGS.distillation_loss,
        augment_to=FLAGS.augment_to, seed=getattr(FLAGS, "seed", 0),  # the benchmark sets seeds per cell instead
        weight_decay=FLAGS.weight_decay, vector_weight=FLAGS.vector_weight, fine_tune_epochs=FLAGS.fine_tune_epochs,
        fine_tune_learning_rate=FLAGS.fine_tune_learning_rate, transfer_pool=FLAGS.transfer_pool,
    )


def define_strategy_flags():
    flags.DEFINE_string(
        "strategy", "default",
        "How to spread the work (tf.distribute): default (one device), mirrored (every GPU of this machine), "
        "multi_worker (the cluster in TF_CONFIG) or tpu. See docs/SCALING.md.",
    )
    flags.DEFINE_string("tpu", None, "TPU name or grpc:// address for --strategy=tpu (default: this TPU VM's own).")
    flags.DEFINE_integer(
        "cpu_devices", 1, "Split the CPU into this many logical devices, so --strategy=mirrored can be tried "
        "on a machine without GPUs.",
    )


def strategy():
    """The --strategy. Call it first in main(): multi-worker collectives must start before TensorFlow runs anything."""
    distribute.logical_cpus(FLAGS.cpu_devices)
    return distribute.get_strategy(FLAGS.strategy, FLAGS.tpu)
