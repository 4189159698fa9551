"""What an app needs to call a model, stored inside the `.tflite` file itself.

The converter's flatbuffer has a `metadata` list of named buffers (the
converter already puts its own `CONVERSION_METADATA` there). The export adds
`kdistill.json` (label names, sequence length, signature and tensor names,
output quantisation, ...) and the standard `TFLITE_METADATA` that Android tools
read, whose label and vocabulary files are packed after the flatbuffer
(`export.standard_metadata`). A model file copied on its own so still carries
everything; the `.json` and `.vocab.txt` files written beside it hold the same
bytes for apps that would rather not parse the flatbuffer.

Example:

```python
flatbuffer = embed(converter.convert(), {"class_names": ["negative", "positive"]}, {"vocab.txt": b"..."})
read_metadata("student_int8.tflite")["class_names"]      # ["negative", "positive"]
read_vocabulary("student_int8_ids.tflite")               # ["[PAD]", "[UNK]", ...]
read_labels("student_dynamic_mediapipe.tflite")          # ["negative", "positive"]
```
"""

import json

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema_fb
from tensorflow.lite.tools import flatbuffer_utils

from kdistill.errors import KdistillError
from kdistill.export import standard_metadata

METADATA_NAME = "kdistill.json"
# Token-ids models exported before the standard metadata kept their vocabulary in this entry.
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


def read_packed_file(path, name):
    """The bytes of file `name` packed after the model at `path` (standard metadata), or None."""
    return standard_metadata.packed_files(_read(path)).get(name)


def read_standard_metadata(path):
    """The model's standard `ModelMetadataT` (see `export.standard_metadata`), or None."""
    data = read_file(path, standard_metadata.METADATA_NAME)
    return standard_metadata.parse(data) if data else None


def read_vocabulary(path):
    """The vocabulary an app tokenizes with (list of pieces), or None for a text-in model."""
    data = read_packed_file(path, standard_metadata.VOCABULARY_FILE) or read_file(path, VOCABULARY_NAME)
    return _lines(data) if data else None


def read_labels(path):
    """The class names in the model's standard label file, or None if it has none."""
    data = read_packed_file(path, standard_metadata.LABELS_FILE)
    return _lines(data) if data else None


def _lines(data):
    return data.decode("utf-8").split("\n")[:-1]


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
