"""From an INT8 model and a board to embedded sources: bundles, TFLM glue and the C backend."""
