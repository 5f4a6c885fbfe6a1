"""TFLite models: the flatbuffer reader and the TFLite Micro interpreter wrappers."""
