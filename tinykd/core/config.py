"""The `tinykd.toml` pipeline file as typed dataclasses. Every default lives here, once."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from tinykd.core.artifacts import RunLayout, read_parsed
from tinykd.core.errors import TinykdError

CONFIG_FILE = "tinykd.toml"


@dataclass
class DataConfig:
    """Which dataset, and how its images are prepared."""

    dataset: str = "fashion_mnist"
    image_size: int | list[int] = 48
    channels: int = 1
    validation_split: float = 0.1
    data_dir: str = ""
    limit: int = 0
    """Use at most this many training images (0: all); for quick runs."""

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the images the models see."""
        if isinstance(self.image_size, int):
            return (self.image_size, self.image_size)
        return (int(self.image_size[0]), int(self.image_size[1]))


@dataclass
class TrainingConfig:
    """What training a teacher and a student share."""

    architecture: str
    width: float = 1.0
    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 2e-3
    """Adam, cosine decay to zero."""
    augment: bool | str = False
    """true: light (pad + crop, brightness, contrast); "strong": also flips, larger shifts and changes."""


@dataclass
class TeacherConfig(TrainingConfig):
    """The teacher: trained on labels with label smoothing, L2 and light augmentation."""

    architecture: str = "cnn_teacher"
    augment: bool | str = True
    label_smoothing: float = 0.05
    extra: list[str] = field(default_factory=list)
    """Further teachers (.keras or .onnx files) whose logits are averaged with this one's."""


@dataclass
class FeatureKD:
    """One feature-distillation pair: a teacher layer taught to a student layer."""

    teacher_layer: str
    student_layer: str
    loss: str = "auto"
    """mse, cosine_similarity, or auto: mse on feature maps, cosine on hidden vectors."""
    weight: float = 1.0


@dataclass
class StudentConfig(TrainingConfig):
    """The student: distilled from the teacher(s), or trained on labels alone with kd = false."""

    architecture: str = "tiny_conv"
    depth: int = 0
    """Extra blocks at the architecture's last resolution (0: as described; `tinykd models` says what)."""
    epochs: int = 30
    alpha: float = 0.5
    temperature: float = 3.0
    kd: bool = True
    baseline: bool = True
    """Also train the same student without KD, so the KD gain is measured."""
    features: list[FeatureKD] = field(default_factory=list)


@dataclass
class QuantizeConfig:
    """Full-integer INT8 conversion."""

    representative_samples: int = 500
    per_channel_dense: bool = False
    """Per-channel FULLY_CONNECTED weights: the TFLM versions RIOT and Zephyr pin (2024) miscompute or
    refuse them, so the default is one scale per dense layer."""


@dataclass
class VerifyConfig:
    """`tinykd verify`'s defaults."""

    tflm: str = "latest"
    """The TFLM version that is the reference: latest (installed with tinykd), riot, zephyr (the versions
    those RTOSes pin) or a tflite-micro nightly such as 0.dev20240520175645."""


@dataclass
class TuneConfig:
    """`tinykd tune`'s search space: each trial's student is drawn from these ranges ([low, high])."""

    architectures: list[str] = field(default_factory=lambda: ["tiny_conv", "tiny_dsconv", "classic_student"])
    width: list[float] = field(default_factory=lambda: [0.25, 1.5])
    image_sizes: list[int] = field(default_factory=list)
    """Square input sides to try; empty: the run's image size only."""
    alpha: list[float] = field(default_factory=lambda: [0.1, 0.9])
    temperature: list[float] = field(default_factory=lambda: [1.0, 8.0])
    epochs: list[int] = field(default_factory=lambda: [10, 30])
    depth: list[int] = field(default_factory=lambda: [0, 2])
    trials: int = 20
    max_ms: float = 0.0
    """Latency budget at the board's clock (0: none)."""


@dataclass
class PipelineConfig:
    """The whole pipeline: one run directory `runs/<name>/`."""

    name: str = "fashion"
    seed: int = 0
    runs_dir: str = "runs"
    distribute: str = ""
    """How teacher and student train: "" on one device, "mirrored" on all GPUs at once (tf.distribute).
    Not part of what made a model: a kept model is reused whichever was used."""
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)

    @property
    def layout(self) -> RunLayout:
        """The run's artifact paths."""
        return RunLayout.for_name(self.name, self.runs_dir)


_SECTIONS = {"data": DataConfig, "teacher": TeacherConfig, "student": StudentConfig,
             "quantize": QuantizeConfig, "verify": VerifyConfig,
             "tune": TuneConfig}


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Read a pipeline file; with no path, `tinykd.toml` if it exists, else the built-in default."""
    if path is None:
        if not Path(CONFIG_FILE).exists():
            return PipelineConfig()
        path = CONFIG_FILE
    raw = read_parsed(path, tomllib.loads, "TOML", "no such pipeline file")
    return config_from_dict(raw, str(path))


def config_from_dict(raw: dict, origin: str = "config") -> PipelineConfig:
    """Build a PipelineConfig from parsed TOML, rejecting unknown keys and wrong types."""
    top = {k: v for k, v in raw.items() if k not in _SECTIONS}
    sections = {}
    for name, cls in _SECTIONS.items():
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise TinykdError(f"{origin}: [{name}] must be a table")
        sections[name] = build_dataclass(cls, value, f"{origin}: [{name}]")
    config = build_dataclass(PipelineConfig, top, origin)
    for name, value in sections.items():
        setattr(config, name, value)
    config.student.features = [
        f if isinstance(f, FeatureKD) else build_dataclass(FeatureKD, f, f"{origin}: [[student.features]]")
        for f in config.student.features]
    _validate(config, origin)
    return config


def build_dataclass(cls, values: dict, where: str):
    """Build `cls` from a TOML table, naming the table in errors about unknown, missing or mistyped keys."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise TinykdError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(fields))}")
    missing = [name for name, f in fields.items() if name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise TinykdError(f"{where}: missing key {missing[0]!r}")
    for key, value in values.items():
        if not _matches(value, hints[key]):
            raise TinykdError(f"{where}: {key} = {value!r} is not {_type_name(hints[key])}")
    return cls(**values)


def _matches(value, hint) -> bool:
    """Whether a TOML value fits a field's type annotation (bool is not a number here)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is list:
        return isinstance(value, list) and all(_matches(v, typing.get_args(hint)[0]) for v in value)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, (dict, hint))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(hint))
    if origin is list:
        return "a list of " + {int: "integers", float: "numbers", str: "strings"}.get(typing.get_args(hint)[0],
                                                                                     "tables")
    if dataclasses.is_dataclass(hint):
        return "a table"
    return names.get(hint, getattr(hint, "__name__", str(hint)))


RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A run's name is its folder under runs_dir: no separators, nothing hidden, never `.` or `..`."""


def _validate(config: PipelineConfig, origin: str) -> None:
    size = config.data.image_size
    if isinstance(size, list) and len(size) != 2:
        raise TinykdError(f"{origin}: data.image_size = {size!r} must be one number or [height, width]")
    checks = [
        (RUN_NAME.fullmatch(config.name) is not None,
         f"name = {config.name!r} must be a folder name: letters, digits, '.', '_' and '-', starting with a "
         "letter or digit"),
        (config.data.limit >= 0, f"data.limit = {config.data.limit} must be 0 (all images) or positive"),
        (config.teacher.batch_size > 0 and config.student.batch_size > 0, "batch_size must be positive"),
        (config.teacher.learning_rate > 0 and config.student.learning_rate > 0, "learning_rate must be positive"),
        (0.0 <= config.student.alpha <= 1.0, "student.alpha must be between 0 and 1"),
        (config.student.temperature > 0, "student.temperature must be positive"),
        (0.0 <= config.data.validation_split < 1.0, "data.validation_split must be in [0, 1)"),
        (config.data.channels in (1, 3), "data.channels must be 1 or 3"),
        (all(s > 0 for s in config.data.size), "data.image_size must be positive"),
        (config.teacher.epochs >= 0 and config.student.epochs >= 0, "epochs must not be negative"),
        (config.teacher.width > 0 and config.student.width > 0, "width must be positive"),
        (config.quantize.representative_samples > 0, "quantize.representative_samples must be positive"),
        (all(a in (True, False, "strong") for a in (config.teacher.augment, config.student.augment)),
         'augment must be true, false or "strong"'),
    ]
    checks += _tune_checks(config.tune)
    for ok, message in checks:
        if not ok:
            raise TinykdError(f"{origin}: {message}")
    from tinykd.tflite.tflm_host import resolve
    from tinykd.train.data import check_dataset_name
    from tinykd.train.devices import check_strategy
    from tinykd.train.models import check_architecture, check_depth

    for where, check in (("distribute", lambda: check_strategy(config.distribute)),
                         ("data.dataset", lambda: check_dataset_name(config.data.dataset)),
                         ("teacher.architecture", lambda: check_architecture(config.teacher.architecture)),
                         ("student.architecture", lambda: check_architecture(config.student.architecture)),
                         ("student.depth", lambda: check_depth(config.student.architecture, config.student.depth)),
                         *(("tune.architectures", lambda name=name: _check_student(name))
                           for name in config.tune.architectures)):
        try:
            check()
        except TinykdError as exc:
            raise TinykdError(f"{origin}: {where}: {exc}") from None

    try:
        resolve(config.verify.tflm)
    except TinykdError as exc:
        raise TinykdError(f"{origin}: verify.tflm = {config.verify.tflm!r}: {str(exc).split(': ', 1)[1]}") from None


def _check_student(name: str) -> None:
    from tinykd.train.models import ARCHITECTURES, check_architecture

    check_architecture(name)
    if ARCHITECTURES[name].role != "student":
        raise TinykdError(f"{name!r} is a {ARCHITECTURES[name].role}, not a student architecture")


def _tune_checks(tune: TuneConfig) -> list[tuple[bool, str]]:
    """[tune]: every range is [low, high] with low <= high, inside what the value can be."""
    def span(key: str, lowest: float, upper: float | None = None) -> tuple[bool, str]:
        value = getattr(tune, key)
        ok = (len(value) == 2 and lowest <= value[0] <= value[1]
              and (upper is None or value[1] <= upper))
        bound = f" and at most {upper}" if upper is not None else ""
        return ok, f"tune.{key} = {value!r} must be [low, high] with low <= high, at least {lowest}{bound}"

    return [
        (len(tune.architectures) > 0, "tune.architectures must name at least one student architecture"),
        span("width", 0.01), span("alpha", 0.0, 1.0), span("temperature", 0.01), span("epochs", 1),
        span("depth", 0),
        (all(side > 0 for side in tune.image_sizes), "tune.image_sizes must be positive"),
        (tune.trials > 0, "tune.trials must be positive"),
        (tune.max_ms >= 0, "tune.max_ms must be 0 (no limit) or positive"),
    ]
