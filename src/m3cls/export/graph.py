"""ONNX graph files: a graph over protobuf's 2 GiB keeps its weights in one file beside it."""

from __future__ import annotations

import os


def data_file(graph: str) -> str:
    """The name of the file that holds a large graph's weights, beside it."""
    return os.path.basename(graph) + ".data"


def save_graph(model, path: str, large: bool) -> None:
    """Save an ONNX model; ``large`` puts every weight in ``data_file(path)`` (replaced, not appended to)."""
    import onnx

    if not large:
        onnx.save_model(model, path)
        return
    data = os.path.join(os.path.dirname(path), data_file(path))
    if os.path.exists(data):  # onnx appends to an existing data file; the model is in memory already
        os.remove(data)
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data_file(path), size_threshold=1024)
