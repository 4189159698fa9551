"""Standard TFLite Metadata (schema `M001`): what MediaPipe Tasks, the TFLite Task Library and Android Studio read.

A model file carries two things for its clients:
- a `TFLITE_METADATA` flatbuffer in the model's metadata list, describing each
  input and output tensor (its name, its tokenizer, its label file);
- the files it names (`labels.txt`, `vocab.txt`), in a zip archive appended to
  the flatbuffer. The archive is *uncompressed* because MediaPipe reads the
  files in place from the memory-mapped model.

Why this writer. MediaPipe's own metadata writer
(`mediapipe.tasks.python.metadata.metadata_writers`) fails to import in
mediapipe 1.2.3: its populator needs a compiled module that the wheel lacks.
tflite-support's writer needs protobuf<4, which TensorFlow 2.21 cannot share a
process with, and tflite-support is no longer released. The schema module that
mediapipe does ship (`mediapipe.tasks.metadata.metadata_schema_py_generated`,
generated from `metadata_schema.fbs`) is maintained together with the C++
reader that checks the file on the phone, so the metadata is built with it here
and packed exactly as MediaPipe's populator packs it.

Example:

```python
meta = model_metadata(
    "kdistill student", "SST-2 sentiment",
    inputs=bert_inputs(["ids", "mask", "segment_ids"]),
    outputs=[probability_output()],
    input_process_units=[bert_tokenizer()],
)
flatbuffer = export.metadata.embed(flatbuffer, kdistill_json, {METADATA_NAME: metadata_bytes(meta)})
model_bytes = append_files(flatbuffer, {"vocab.txt": b"[PAD]\\n...", "labels.txt": b"negative\\npositive\\n"})
packed_files(model_bytes)["labels.txt"]  # b"negative\\npositive\\n"
```
"""

import io
import zipfile

import flatbuffers
from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

METADATA_NAME = "TFLITE_METADATA"  # the name every reader looks the buffer up by
FILE_IDENTIFIER = b"M001"
LABELS_FILE = "labels.txt"
VOCABULARY_FILE = "vocab.txt"
# BERT-style inputs, by the names MediaPipe's BertPreprocessorCalculator and the
# Task Library's BertNLClassifier find them by; the Task Library also requires
# the output to be named "probability".
BERT_INPUT_NAMES = ("ids", "mask", "segment_ids")
OUTPUT_NAME = "probability"

# The lowest metadata parser version that reads each schema member we use
# (mediapipe/tasks/cc/metadata/metadata_version.cc). A reader older than the
# version written refuses the file, so write the least that is true.
_VERSION_DEFAULT = (1, 0, 0)
_VERSION_VOCABULARY_FILE = (1, 0, 1)
_VERSION_PROCESS_UNITS = (1, 1, 0)  # input process units and BertTokenizerOptions alike


def _feature(name, description, files=(), value_range=None):
    tensor = schema.TensorMetadataT()
    tensor.name = name
    tensor.description = description
    tensor.content = schema.ContentT()
    tensor.content.contentPropertiesType = schema.ContentProperties.FeatureProperties
    tensor.content.contentProperties = schema.FeaturePropertiesT()
    if value_range is not None:
        tensor.stats = schema.StatsT()
        tensor.stats.min, tensor.stats.max = [value_range[0]], [value_range[1]]
    tensor.associatedFiles = list(files) or None
    return tensor


def _file(name, description, file_type):
    entry = schema.AssociatedFileT()
    entry.name, entry.description, entry.type = name, description, file_type
    return entry


def bert_inputs(names_in_model_order):
    """Tensor metadata for the three BERT inputs, in the order the model takes them."""
    descriptions = {
        "ids": "WordPiece ids into vocab.txt: [CLS], the text's pieces, [SEP], then 0s.",
        "mask": "1 for [CLS], the pieces and [SEP]; 0 for padding.",
        "segment_ids": "0 everywhere (one text per call).",
    }
    return [_feature(name, descriptions[name]) for name in names_in_model_order]


def text_input(name):
    """Metadata for a raw UTF-8 string input (the tokenizer runs inside the graph)."""
    tensor = schema.TensorMetadataT()
    tensor.name = name
    tensor.description = "Raw UTF-8 text; the model normalises and tokenizes it itself (TF Text custom ops)."
    return tensor


def token_ids_input(name, sequence_length):
    return _feature(
        name,
        f"WordPiece ids into vocab.txt (no [CLS]/[SEP]), 0-padded or truncated to {sequence_length}.",
    )


def bert_tokenizer():
    """The BertTokenizerOptions process unit, pointing at the vocabulary packed with the model."""
    options = schema.BertTokenizerOptionsT()
    options.vocabFile = [_file(VOCABULARY_FILE, "WordPiece vocabulary; an id is a line number.",
                               schema.AssociatedFileType.VOCABULARY)]
    unit = schema.ProcessUnitT()
    unit.optionsType = schema.ProcessUnitOptions.BertTokenizerOptions
    unit.options = options
    return unit


def probability_output(description="Probability of each class."):
    """The classification output: one probability per class, named by the packed label file."""
    labels_file = _file(LABELS_FILE, "Class names, one per line, in output order.",
                        schema.AssociatedFileType.TENSOR_AXIS_LABELS)
    return _feature(OUTPUT_NAME, description, files=[labels_file], value_range=(0.0, 1.0))


def model_metadata(name, description, inputs, outputs, input_process_units=(), version=None):
    """A `ModelMetadataT` for a one-subgraph model."""
    subgraph = schema.SubGraphMetadataT()
    subgraph.inputTensorMetadata = list(inputs)
    subgraph.outputTensorMetadata = list(outputs)
    subgraph.inputProcessUnits = list(input_process_units) or None
    meta = schema.ModelMetadataT()
    meta.name, meta.description, meta.version = name, description, version
    meta.subgraphMetadata = [subgraph]
    meta.minParserVersion = _min_parser_version(meta)
    return meta


def _min_parser_version(meta):
    version = _VERSION_DEFAULT
    subgraph = meta.subgraphMetadata[0]
    if subgraph.inputProcessUnits:
        version = max(version, _VERSION_PROCESS_UNITS)
    tensors = (subgraph.inputTensorMetadata or []) + (subgraph.outputTensorMetadata or [])
    units = subgraph.inputProcessUnits or []
    files = [f for t in tensors for f in (t.associatedFiles or [])]
    files += [f for u in units if u.optionsType == schema.ProcessUnitOptions.BertTokenizerOptions
              for f in (u.options.vocabFile or [])]
    if any(f.type == schema.AssociatedFileType.VOCABULARY for f in files):
        version = max(version, _VERSION_VOCABULARY_FILE)
    return ".".join(str(v) for v in version)


def metadata_bytes(meta):
    builder = flatbuffers.Builder(0)
    builder.Finish(meta.Pack(builder), FILE_IDENTIFIER)
    return bytes(builder.Output())


def append_files(flatbuffer, files):
    """`flatbuffer` followed by an uncompressed zip of `files` ({name: bytes}), as MediaPipe reads it."""
    out = io.BytesIO(bytes(flatbuffer))
    out.seek(0, io.SEEK_END)
    # Mode "a" on bytes that are not a zip appends a new archive after them.
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def packed_files(model_bytes):
    """{name: bytes} of the files appended to a model, `{}` when it has none."""
    stream = io.BytesIO(model_bytes)
    if not zipfile.is_zipfile(stream):
        return {}
    with zipfile.ZipFile(stream) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def packed_files_start(model_bytes):
    """Where the appended archive starts, i.e. the flatbuffer's length (the file's length if none)."""
    stream = io.BytesIO(model_bytes)
    if not zipfile.is_zipfile(stream):
        return len(model_bytes)
    with zipfile.ZipFile(stream) as archive:
        return min(info.header_offset for info in archive.infolist())


def parse(buffer_data):
    """The `ModelMetadataT` stored in a `TFLITE_METADATA` buffer."""
    return schema.ModelMetadataT.InitFromObj(schema.ModelMetadata.GetRootAsModelMetadata(buffer_data, 0))
