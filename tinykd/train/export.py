"""A `.keras` model as ONNX: float32 through Keras' own exporter (tf2onnx underneath), and INT8 through
onnxruntime's dynamic quantization.

The ONNX model takes the Keras model's NHWC float images (any batch size) and gives its logits, so a
user's other tools, and tinykd itself as an `.onnx` teacher, can run it with onnxruntime. INT8 is
dynamic: int8 weights, activations quantized per batch at run time from their observed range, so no
calibration data is needed; MatMul and Conv become integer ops.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tinykd.core.artifacts import atomic_path
from tinykd.core.console import quiet
from tinykd.core.errors import TinykdError
from tinykd.train.models import load_keras_model

FORMATS = ("onnx",)
OPSET = 17
INPUT_NAME = "input"


def default_output(model: Path, int8: bool = False) -> Path:
    """`<stem>.onnx` (or `<stem>_int8.onnx`) beside the model."""
    return model.with_name(f"{model.stem}{'_int8' if int8 else ''}.onnx")


def export_model(model: str | Path, fmt: str = "onnx", out: str | Path | None = None, int8: bool = False,
                 force: bool = False) -> Path:
    """Write the `.keras` model as ONNX (float32, or INT8 with `int8`) to `out`; returns the path."""
    model = Path(model)
    if fmt not in FORMATS:
        raise TinykdError(f"--format {fmt}: unknown export format; known: {', '.join(FORMATS)}")
    if model.suffix != ".keras":
        raise TinykdError(f"{model}: export takes a .keras model")
    out = Path(out) if out else default_output(model, int8)
    if out.exists() and not force:
        raise TinykdError(f"{out}: already exists; --force replaces it, or choose another --out")
    keras_model = load_keras_model(model)
    with tempfile.TemporaryDirectory() as tmp, atomic_path(out) as target:
        float_path = Path(tmp) / "float32.onnx" if int8 else target
        try:
            to_onnx(keras_model, float_path)
        except Exception as exc:
            raise TinykdError(f"{model}: cannot convert to ONNX ({type(exc).__name__}: {exc})") from None
        if int8:
            quantize_onnx(float_path, target)
    return out


def to_onnx(keras_model, path: Path) -> None:
    """Float32 ONNX of a Keras model: NHWC input named `input` with a free batch dimension."""
    import tensorflow as tf

    signature = [tf.TensorSpec((None,) + tuple(keras_model.input_shape[1:]), tf.float32, name=INPUT_NAME)]
    with quiet():
        keras_model.export(str(path), format="onnx", verbose=False, input_signature=signature, opset_version=OPSET)


def quantize_onnx(source: Path, target: Path) -> None:
    """Dynamic INT8 quantization of an ONNX model (signed int8 weights)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
