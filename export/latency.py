"""Batch-1 latency of a `.tflite` model: the time of `invoke()` alone, the way LiteRT's own
`benchmark_model` tool counts it.

Timing a whole Python call (signature runner, input copies, output reads) adds
10-20 microseconds of interpreter bookkeeping per call. That is noise next to a
transformer's milliseconds but half of what a small student costs, so a speed-up
computed that way measures Python, not the models. Every model in the cost
table is timed here, the same way.

Example:

```python
rows = [{"texts": np.array([b"a gripping film"], dtype=object)}] * 100
latencies = invoke_latencies_ms("runs/demo/student_dynamic.tflite", rows)
```
"""

import time

import numpy as np

from kdistill.export import runtime


def invoke_latencies_ms(path, rows, num_threads=1):
    """Milliseconds of `invoke()` for each row, after one untimed warm-up call.

    Args:
        path: the `.tflite` file.
        rows: dicts from input name (the serving signature's: `texts`, `token_ids`,
            `padding_mask`, ...) to a batch-1 array; every row has the same shapes.
        num_threads: LiteRT CPU threads (one, as a phone app's background thread would).
    """
    from ai_edge_litert.interpreter import InterpreterWithCustomOps

    rows = list(rows)
    interpreter = InterpreterWithCustomOps(
        model_path=path, custom_op_registerers=runtime.custom_op_registerers(), num_threads=num_threads
    )
    inputs = {runtime.input_name(d["name"]): d for d in interpreter.get_input_details()}
    for name, value in rows[0].items():
        if tuple(inputs[name]["shape"]) != np.shape(value):
            interpreter.resize_tensor_input(inputs[name]["index"], list(np.shape(value)))
    interpreter.allocate_tensors()
    latencies = []
    for i, row in enumerate([rows[0]] + rows):
        for name, value in row.items():
            interpreter.set_tensor(inputs[name]["index"], value)
        start = time.perf_counter()
        interpreter.invoke()
        if i:  # the first call sets up kernels and caches
            latencies.append((time.perf_counter() - start) * 1e3)
    return latencies

