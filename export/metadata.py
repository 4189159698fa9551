"""What an app needs to call a model, stored inside the `.tflite` file itself.

The converter's flatbuffer has a `metadata` list of named buffers (the
converter already puts its own `CONVERSION_METADATA` there). The export adds
`kdistill.json` (label names, sequence length, signature and tensor names,
output quantisation, ...) and, for token-ids models, `vocab.txt`, so a model
file copied on its own still carries everything; the `.json` and `.vocab.txt`
files written beside it hold the same bytes for apps that would rather not
parse the flatbuffer.

Example:

```python
flatbuffer = embed(converter.convert(), {"class_names": ["negative", "positive"]}, {"vocab.txt": b"..."})
read_metadata("student_int8.tflite")["class_names"]      # ["negative", "positive"]
read_file("student_int8_ids.tflite", "vocab.txt")        # b"[PAD]\\n[UNK]\\n..."
```
"""

import json

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema_fb
from tensorflow.lite.tools import flatbuffer_utils

from kdistill.errors import KdistillError

METADATA_NAME = "kdistill.json"
VOCABULARY_NAME = "vocab.txt"


def embed(flatbuffer, metadata, files=None):
    """`flatbuffer` with `metadata` (a JSON-able dict) and `files` ({name: bytes}) added."""
    # The object round trip is the one the converter itself ends every conversion with.
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    entries = {METADATA_NAME: json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode("utf-8")}
    entries.update(files or {})
    model.metadata = [m for m in (model.metadata or []) if m.name.decode("utf-8") not in entries]
    for name, data in entries.items():
        buffer = schema_fb.BufferT()
        buffer.data = np.frombuffer(data, dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema_fb.MetadataT()
        entry.name = name.encode("utf-8")
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    return flatbuffer_utils.convert_object_to_bytearray(model)


def metadata_entries(flatbuffer):
    """{name: buffer index} of the model's metadata list."""
    model = schema_fb.Model.GetRootAsModel(flatbuffer, 0)
    return {model.Metadata(i).Name().decode("utf-8"): model.Metadata(i).Buffer() for i in range(model.MetadataLength())}


def read_file(path, name):
    """The bytes of metadata entry `name` of the `.tflite` at `path`, or None if it has none."""
    flatbuffer = _read(path)
    index = metadata_entries(flatbuffer).get(name)
    if index is None:
        return None
    data = schema_fb.Model.GetRootAsModel(flatbuffer, 0).Buffers(index).DataAsNumpy()
    return bytes(data) if not isinstance(data, int) else b""  # an empty vector reads as 0


def read_metadata(path):
    """The `kdistill.json` dict stored in the model at `path` (`{}` for a model not made by kdistill)."""
    data = read_file(path, METADATA_NAME)
    return json.loads(data.decode("utf-8")) if data else {}


def read_vocabulary(path):
    """The token-ids model's vocabulary (list of pieces), or None for a text-in model."""
    data = read_file(path, VOCABULARY_NAME)
    return data.decode("utf-8").split("\n")[:-1] if data else None


def vocabulary_bytes(pieces):
    return "".join(p + "\n" for p in pieces).encode("utf-8")


def _read(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise KdistillError(f"{path}: cannot read the model ({e.strerror}); export one first or fix the path") from None
    if data[4:8] != b"TFL3":
        raise KdistillError(f"{path}: not a .tflite model (no TFL3 identifier); pass a file written by export.tflite")
    return data
