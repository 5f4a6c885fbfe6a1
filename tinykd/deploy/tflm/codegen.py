"""Render the bundle's sources from the Jinja templates in `tinykd/templates/`.

Everything here is a pure function of its inputs: the same model, board and names give the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


from tinykd import __version__
from tinykd.core.errors import TinykdError
from tinykd.core.templates import environment
from tinykd.deploy.ops import SPECS


# The other builtin ops TFLM's MicroMutableOpResolver has a method for (micro_mutable_op_resolver.h);
# those tinykd describes (tinykd.deploy.ops) name their own. Methods are the op name in CamelCase, with
# the exceptions TFLM spells differently listed as such.
_OTHER_TFLM_OPS = """
ABS ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE BATCH_MATMUL BATCH_TO_SPACE_ND BROADCAST_ARGS BROADCAST_TO
CALL_ONCE CAST CEIL COS CUMSUM DEPTH_TO_SPACE DIV DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL EXP
EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD GATHER GATHER_ND GREATER GREATER_EQUAL IF L2_NORMALIZATION
L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG LOG_SOFTMAX LOGICAL_AND LOGICAL_NOT LOGICAL_OR MAXIMUM MINIMUM
MIRROR_PAD NEG NOT_EQUAL PACK PRELU READ_VARIABLE REDUCE_ALL REDUCE_MAX REDUCE_MIN RELU RELU6 RESIZE_BILINEAR
RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SPACE_TO_BATCH_ND SPACE_TO_DEPTH
SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV
UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE
""".split()
_TFLM_SPELLING = {
    "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "CUMSUM": "AddCumSum", "GATHER_ND": "AddGatherNd",
    "L2_NORMALIZATION": "AddL2Normalization", "L2_POOL_2D": "AddL2Pool2D", "LOG_SOFTMAX": "AddLogSoftmax",
    "RELU6": "AddRelu6", "REVERSE_V2": "AddReverseV2", "SELECT_V2": "AddSelectV2",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPLIT_V": "AddSplitV", "SVDF": "AddSvdf",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
}


def tflm_method(op: str) -> str | None:
    """The resolver method that registers `op` in TFLM, or None when TFLM has no kernel for it."""
    if op in SPECS:
        return SPECS[op].resolver
    if op not in _OTHER_TFLM_OPS:
        return None
    words = [word.upper() if word[0].isdigit() else word.capitalize() for word in op.split("_")]
    return _TFLM_SPELLING.get(op) or "Add" + "".join(words)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Names:
    """C/C++ names in the generated sources; RIOT and Zephyr examples use different conventions."""

    array_name: str = "g_model"
    namespace: str = ""
    """C++ namespace for the array, resolver and arena size ("" for none; "a::b" for nested)."""
    riot_module: str = "tinykd_model"

    def check(self) -> None:
        parts = self.namespace.split("::") if self.namespace else []
        for what, value in [("array name", self.array_name), ("RIOT module name", self.riot_module)] + \
                [("namespace", p) for p in parts]:
            check_identifier(what, value)


_RESERVED = set("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class
compl concept const const_cast consteval constexpr constinit continue co_await co_return co_yield decltype
default delete do double dynamic_cast else enum explicit export extern false float for friend goto if
inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected
public register reinterpret_cast requires restrict return short signed sizeof static static_assert
static_cast struct switch template this thread_local throw true try typedef typeid typename union
unsigned using virtual void volatile wchar_t while xor xor_eq _Alignas _Alignof _Atomic _Bool _Complex
_Generic _Imaginary _Noreturn _Static_assert _Thread_local main std tflite
""".split())
"""C and C++ keywords, and names the generated sources and TFLM already use at file scope."""


def check_identifier(what: str, value: str) -> None:
    """A name the generated C and C++ can declare: an identifier, not a keyword, not reserved (a leading
    underscore and a capital, or a double underscore)."""
    if not _IDENTIFIER.match(value):
        raise TinykdError(f"{what} {value!r} is not a C identifier")
    if value in _RESERVED or re.match(r"_[A-Z]|.*__", value):
        raise TinykdError(f"{what} {value!r} is a reserved word in C or C++; choose another name")


def comment_text(text: str) -> str:
    """`text` (a file name) safe inside a generated comment or string: control characters, quotes,
    backslashes and comment ends replaced."""
    return re.sub(r'[\x00-\x1f\x7f"\\]', "?", text).replace("*/", "*?")


def default_array_names(model_files: list[str]) -> list[str]:
    """g_model for one model; g_<file stem>_model for each of several (made C identifiers, unique)."""
    if len(model_files) == 1:
        return ["g_model"]
    names = []
    for file in model_files:
        name = "g_" + re.sub(r"[^A-Za-z0-9_]", "_", Path(file).stem) + "_model"
        while name in names:
            name += "_"
        names.append(name)
    return names


def c_bytes(data: bytes, per_line: int = 12) -> str:
    """The bytes as C initialiser lines: `  0x1c, 0x00, ...`."""
    lines = []
    for start in range(0, len(data), per_line):
        lines.append("  " + " ".join(f"0x{b:02x}," for b in data[start:start + per_line]))
    return "\n".join(lines)


def render_tflm_sources(context: dict, names: Names) -> dict[str, str]:
    """The TFLM part of a bundle: relative path -> file text.

    `context` holds `models` (per model: file, bytes, sha256, ops, array_name, data (the .tflite bytes),
    arena), `board` (a Board), `arena` (the bundle's figures), its breakdown lines and `registrations`
    [(op, method)]. Include guards carry the namespace and the first array name, so several bundles can
    be included in one application.
    """
    names.check()
    namespaces = names.namespace.split("::") if names.namespace else []
    guard = "_".join(["TINYKD"] + namespaces + [names.array_name]).upper() + "_"
    values = dict(context, version=__version__, namespaces=namespaces, guard_prefix=guard,
                  array_name=names.array_name, riot_module=names.riot_module,
                  qualify="".join(f"{ns}::" for ns in namespaces),
                  models=[dict(m, bytes_c=c_bytes(m["data"])) for m in context["models"]])
    env = environment()
    outputs = {
        "model_data.h": "model_data.h.j2",
        "model_data.cc": "model_data.cc.j2",
        "tinykd_ops.h": "tinykd_ops.h.j2",
        "tinykd_arena.h": "tinykd_arena.h.j2",
        f"riot/{names.riot_module}/Makefile": "riot/module/Makefile.j2",
        f"riot/{names.riot_module}/Makefile.include": "riot/module/Makefile.include.j2",
        f"riot/{names.riot_module}/Makefile.dep": "riot/module/Makefile.dep.j2",
        "riot/README.md": "riot/README.md.j2",
        "zephyr/tinykd.cmake": "zephyr/tinykd.cmake.j2",
        "zephyr/prj.conf": "zephyr/prj.conf.j2",
        "zephyr/README.md": "zephyr/README.md.j2",
    }
    return {path: env.get_template(f"tflm/{template}").render(values) for path, template in outputs.items()}


def arduino_library_name(model_file: str) -> str:
    """An Arduino library name for the model: tinykd_ + its file stem, as a C identifier."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(model_file).stem)
    return f"tinykd_{stem}"


def render_arduino(c_sources: dict[str, str], context: dict) -> dict[str, str]:
    """The Arduino library of a bundle: the C backend in src/, library.properties, an example sketch.

    `context` holds `model` (file, ops), `input_scale`, `input_zero_point`, `input_bytes` and
    `class_names` (empty when unknown)."""
    library = arduino_library_name(context["model"]["file"])
    values = dict(context, version=__version__, library=library)
    env = environment()
    root = f"arduino/{library}"
    files = {f"{root}/src/{path}": text for path, text in c_sources.items()}
    files[f"{root}/library.properties"] = env.get_template("arduino/library.properties.j2").render(values)
    files[f"{root}/examples/classify/classify.ino"] = env.get_template("arduino/classify.ino.j2").render(values)
    files["arduino/README.md"] = env.get_template("arduino/README.md.j2").render(values)
    return files
