"""The one Jinja environment for every generated file: tinykd/templates, strict, no escaping.

`environment()` keeps a template line as written (the TFLM glue, the firmware's linker script);
`environment(compact=True)` is the same environment with block tags taking their line with them
(the C backend's sources, the report)."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@functools.cache
def _base() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["percent"] = lambda v: "-" if v is None else f"{v * 100:.2f}%"
    env.filters["thousands"] = lambda v: "-" if v is None else f"{v:,}"
    return env


@functools.cache
def _compact() -> jinja2.Environment:
    return _base().overlay(trim_blocks=True, lstrip_blocks=True)


def environment(compact: bool = False) -> jinja2.Environment:
    """The shared environment; `compact` strips the line a block tag stands on (trim_blocks, lstrip_blocks)."""
    return _compact() if compact else _base()
