"""Files and feeds: atomic writes, safe model loading, JSON reports, generator datasets.

Every artefact is written to a temporary name in its final folder and renamed
into place, so a killed run leaves the old file or the new one, never half of one.
"""

import contextlib
import json
import os
import tempfile
import zipfile

import keras
import numpy as np

from kdistill.errors import KdistillError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` and renames it onto `path` on success."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{ext}", dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files 0600; artefacts are meant to be shared
    try:
        yield tmp
        with open(tmp, "rb") as f:  # on disk before the rename, so a crash cannot expose an empty file
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_save_model(model, path):
    with atomic_path(path) as tmp:
        model.save(tmp)


def atomic_save_npy(array, path):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def write_json(data, path):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=_jsonable)
            f.write("\n")
    return path


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_model(path, what):
    """Loads a `.keras` file in safe mode: registered kdistill/keras-hub classes only.

    Safe mode never runs code stored in the file, so a model holding a `Lambda`
    layer (pickled Python bytecode) is refused, and so is any class not registered.
    """
    import kdistill.distiller  # noqa: F401  (registers the custom classes)
    import kdistill.student  # noqa: F401

    if not os.path.isfile(path):
        raise KdistillError(f"{path}: no {what} model here; train one first or fix the path")
    if not zipfile.is_zipfile(path):
        raise KdistillError(
            f"{path}: not a .keras archive (truncated or another kind of file); retrain the {what} or restore the file"
        )
    lambdas = _lambda_layers(path)
    if lambdas:
        raise KdistillError(
            f"{path}: refused: the {what} holds Lambda layers {lambdas}, Python code that safe loading never "
            "runs; rebuild the model from registered layers and save it again"
        )
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # Keras raises many types for a damaged archive
        raise KdistillError(
            f"{path}: not a loadable {what} model ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
            "retrain it or restore the file"
        ) from None


def _lambda_layers(path):
    """Names of the `Lambda` layers in a `.keras` archive's config (empty if it has none or no config)."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile, OSError):
        return []  # keras.saving reports a damaged archive itself
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                found.append(node.get("config", {}).get("name", "?"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def epoch_dataset(make_batches, signature, num_batches=None):
    """A `tf.data.Dataset` that calls `make_batches()` afresh every epoch (new shuffle each time)."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_generator(make_batches, output_signature=signature)
    if num_batches is not None:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
    return dataset.prefetch(2)


class EpochOrder(keras.callbacks.Callback):
    """Makes a dataset's shuffle a function of (seed, epoch), not of how often it was iterated.

    A run resumed at epoch k then sees exactly the batches an uninterrupted run sees in
    epoch k; tf.data's own reshuffling restarts its sequence in a new process. Pass it
    to `fit` as a callback and draw each epoch's order from `rng()`.
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = int(seed)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def rng(self):
        return np.random.default_rng([self.seed, self.epoch])
