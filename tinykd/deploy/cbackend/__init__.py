"""The C backend: lowering, arena plan and quantization helpers for the C kernels."""
