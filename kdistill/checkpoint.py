"""Resuming interrupted training from the last finished epoch.

`EpochBackup` is a Keras callback in the spirit of `keras.callbacks.BackupAndRestore`,
with two differences that matter when a run is killed at an arbitrary moment:

- the whole training state (weights, random-seed states, optimizer slots and
  step count, finished epochs) is one `.npz` file written atomically
  (`io.atomic_path`), so a kill leaves the previous epoch's state or the new
  one, never weights from one epoch beside the epoch counter of another;
- the state carries a key of the run's inputs (data, hyperparameters, starting
  weights), so a backup left by a different configuration or dataset is
  ignored with a warning instead of being loaded into the wrong run.

Rerunning the same command continues with the epoch after the last finished
one; the backup folder is removed when training completes.

Example:

```python
backup = EpochBackup("runs/x/student/backup", key=keys.of(config, texts))
model.fit(dataset, epochs=4, callbacks=[backup])
```
"""

import os
import shutil

import keras
import numpy as np
from absl import logging

from kdistill import io

STATE_FILE = "state.npz"


class EpochBackup(keras.callbacks.Callback):
    """Saves the training state after every epoch and restores it when the same run starts again.

    Args:
        folder: where the state lives while training runs (removed at the end).
        key: `keys.of(...)` of everything that defines the run.
        owner: the layer whose variables are the model state; default the model.
            The `Distiller` passes its student: the frozen teacher never changes.
        name: what is training, for the log line.
    """

    def __init__(self, folder, key, owner=None, name="training"):
        super().__init__()
        self.folder = folder
        self.key = key
        self.owner = owner
        self.name = name
        self.resumed_after_epoch = None

    @property
    def path(self):
        return os.path.join(self.folder, STATE_FILE)

    def _variables(self):
        owner = self.owner if self.owner is not None else self.model
        return list(owner.variables) + list(self.model.optimizer.variables)

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if not optimizer.built:  # its slots must exist before they can be restored
            optimizer.build(self.model.trainable_variables)
        state = self._read()
        if state is None:
            return
        epoch, values = state
        for variable, value in zip(self._variables(), values):
            variable.assign(value)
        # What BackupAndRestore sets too: fit() starts its epoch loop here.
        self.model._initial_epoch = epoch
        self.resumed_after_epoch = epoch
        print(f"[resume] {self.name} resumes after epoch {epoch}, the last one finished ({self.path})", flush=True)

    def _read(self):
        if not os.path.exists(self.path):
            return None
        variables = self._variables()
        try:
            with np.load(self.path, allow_pickle=False) as state:
                key, epoch = str(state["key"]), int(state["epoch"])
                values = [state[f"v{i}"] for i in range(len(variables))] if key == self.key else None
        except Exception as e:  # a damaged file: numpy and zipfile raise many types
            problem = f"is unreadable ({type(e).__name__})"
        else:
            if values is None:
                problem = "belongs to another run (different data or settings)"
            elif any(tuple(v.shape) != value.shape for v, value in zip(variables, values)):
                problem = "does not fit this model"
            else:
                return epoch, values
        logging.warning("%s: the saved training state %s; starting %s from epoch 1", self.path, problem, self.name)
        return None

    def on_epoch_end(self, epoch, logs=None):
        arrays = {f"v{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(self._variables())}
        with io.atomic_path(self.path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, key=np.array(self.key), epoch=np.array(epoch + 1), **arrays)

    def on_train_end(self, logs=None):
        # Only a completed fit() gets here; an interrupted one keeps its state for the rerun.
        self.model._initial_epoch = None
        shutil.rmtree(self.folder, ignore_errors=True)
