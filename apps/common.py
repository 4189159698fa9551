"""Flags shared by the kdistill binaries and the configs they build."""

import os

from absl import flags

from kdistill import config, distribute, pipeline, teacher as teacher_lib

FLAGS = flags.FLAGS


class LabelCount(flags.ArgumentParser):
    """A number of labelled rows, or `all` (None): every row of train."""

    syntactic_help = "a number of rows, or all"

    def parse(self, argument):
        if argument is None or isinstance(argument, int):
            return argument
        if str(argument).strip().lower() == "all":
            return None
        try:
            value = int(argument)
        except ValueError:
            raise ValueError(f"{argument!r} is neither a number of rows nor 'all'") from None
        if value < 1:
            raise ValueError(f"{value}: at least 1 labelled row, or all")
        return value

    def flag_type(self):
        return "int or all"


def define_data_flags():
    flags.DEFINE_string("dataset", default_dataset(), "tfds:<name> or a local folder/file of labelled text.")
    flags.DEFINE(LabelCount(), "num_labels", 1000, "Labelled rows to keep from train (stratified, seeded); all, or "
                 "more than train has, keeps every row (then say --unlabelled).")
    flags.DEFINE_integer("seed", 0, "Seeds the labelled sample, the unlabelled cap and training.")
    flags.DEFINE_integer("max_unlabelled", None, "Keep at most this many unlabelled texts.")
    flags.DEFINE_string("unlabelled", None, "Extra unlabelled text: a .txt file (one per line) or a labelled file.")
    flags.DEFINE_string("encoding", "utf-8", "Text encoding of local data files (latin-1 for many older corpora).")
    flags.DEFINE_string("out_dir", "runs/default", "Run folder for models, caches and metrics.")
    flags.DEFINE_string("teacher_dir", None, "Folder of the fine-tuned teacher (default <out_dir>/teacher).")


def define_config_flags(config_class):
    """One flag per field of `config_class` (a `kdistill.config` dataclass), with its default and help."""
    for field in config.flag_fields(config_class):
        name, help_text, default = config.flag_name(config_class, field), field.metadata["help"], field.default
        if field.metadata.get("choices"):
            flags.DEFINE_enum(name, default, list(field.metadata["choices"]), help_text)
        elif isinstance(default, tuple):
            flags.DEFINE_list(name, [str(item) for item in default], help_text)
        else:
            define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
                      str: flags.DEFINE_string}[type(default)]
            bounds = field.metadata.get("bounds")
            define(name, default, help_text, **(dict(lower_bound=bounds[0], upper_bound=bounds[1]) if bounds else {}))


def config_from_flags(config_class, **fields):
    """`config_class` of the --recipe, with each field a flag on the command line sets replaced by the flag's
    value (`fields` add the rest)."""
    recipe = {type(c): c for c in config.recipe(FLAGS.recipe)}[config_class]
    for field in config.flag_fields(config_class):
        flag = FLAGS[config.flag_name(config_class, field)]
        value = flag.value if flag.present else getattr(recipe, field.name)
        if isinstance(field.default, tuple):
            value = tuple(type(field.default[0])(item) for item in value)
        fields[field.name] = value
    return config_class(**fields)


def define_recipe_flag():
    if "recipe" not in FLAGS:
        flags.DEFINE_enum("recipe", "default", list(config.RECIPES),
                          "Named recipe (kdistill.config.RECIPES): default, the best measured; fast, one teacher and "
                          "no copies; small, a 3.5x faster student. Flags given change its fields.")


def define_teacher_flags():
    define_recipe_flag()
    define_config_flags(config.TeacherConfig)


def define_labelling_flag():
    """How the teacher runs while it labels the transfer set (not a config field: same labels, up to a measured
    agreement, at another speed)."""
    flags.DEFINE_enum("teacher_runtime", "auto", ["auto", *teacher_lib.RUNTIMES],
                      "How the teacher labels the transfer set: tensorflow (the float32 Keras model) or litert-int8 "
                      "(its dynamic-range int8 LiteRT form, over twice as fast on a CPU; each run reports its "
                      "agreement with float32 on dev); auto: TensorFlow on a GPU, LiteRT int8 on a CPU unless it gives the "
                      "float32 teacher's label on under 99% of dev.")


def define_student_flags():
    """The student's shape and the distillation recipe."""
    define_recipe_flag()
    define_config_flags(config.DistillConfig)
    define_config_flags(config.StudentConfig)


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
    return config_from_flags(config.TeacherConfig)


def student_config():
    return config_from_flags(config.StudentConfig)


def distill_config():
    # The benchmark defines no --seed: it seeds each of its cells itself.
    return config_from_flags(config.DistillConfig, seed=FLAGS.seed if "seed" in FLAGS else 0)


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
