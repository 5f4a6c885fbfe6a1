"""Data, models, training, distillation, quantization, evaluation and the pipeline that runs them."""
