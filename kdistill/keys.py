"""Content keys: the one way kdistill decides that two things are the same thing.

Every cache and resumable run is keyed by a hash of what made it: teacher logits by
the teacher's weights, preprocessing and texts; a fine-tuned teacher by its labels and
config; a training run by its config, data and starting weights; a benchmark cell by
its configs. A config enters a key whole (`dataclasses.asdict`), so a new field
changes every key that config is part of, with one exception that its field declares:
an option added later whose default keeps the earlier behaviour (`config.option(...,
keyed_when_set=True)`) enters keys only when set otherwise, so that results keyed before
it (hours of benchmark cells) stay valid where it changes nothing.

Example:

```python
key = of({"epochs": 4}, ["a text", "another"], np.zeros(3, np.float32))
digest = Digest()
digest.update("a text")
digest.update(np.ones(2, np.float32))
digest.hexdigest()
```
"""

import dataclasses
import hashlib

import numpy as np

LENGTH = 32  # hex digits: 128 bits, short enough for file names


class Digest:
    """A key built part by part, for inputs too big to hold at once (weights, streamed shards)."""

    def __init__(self):
        self._sha = hashlib.sha256()

    def update(self, part):
        """Adds one part: bytes, an array (its bytes), a sequence of strings (each one), a config dataclass or any
        other value (its repr). Parts are delimited: ("ab", "c") and ("a", "bc") give different keys."""
        if dataclasses.is_dataclass(part) and not isinstance(part, type):
            part = _keyed_fields(part)
        if isinstance(part, bytes):
            self._sha.update(part)
        elif isinstance(part, np.ndarray) and part.dtype != object:
            self._sha.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, (list, tuple, np.ndarray)):
            for item in part:
                self._sha.update(str(item).encode("utf-8") + b"\0")
        else:
            self._sha.update(repr(part).encode("utf-8"))
        self._sha.update(b"\1")
        return self

    def hexdigest(self):
        return self._sha.hexdigest()[:LENGTH]


def _keyed_fields(config):
    values = dataclasses.asdict(config)
    for field in dataclasses.fields(config):
        if field.metadata.get("keyed_when_set") and values[field.name] == field.default:
            del values[field.name]
    return values


def of(*parts):
    """The key of `parts` (see `Digest.update` for what each may be)."""
    digest = Digest()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()
