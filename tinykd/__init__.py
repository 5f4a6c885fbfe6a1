"""tinykd: from a dataset to a verified INT8 model on a microcontroller."""

__version__ = "0.1.0"
