"""TFLite Micro deployment: model array, op resolver, arena estimate and RTOS glue."""
