"""Training configuration: one dataclass with a typed data section, filled from recipe files
and command-line overrides, and checked (keys, types, ranges) when it resolves.

A recipe is a YAML (or TOML) file of keys of :class:`TrainConfig`, with the input pipeline's
keys (:class:`~gluon_tricks.data.DataConfig`) under ``data:``. It may name the recipe it
builds on with ``base:`` (a path relative to the recipe), and states only what differs, as
each row of the paper's tables adds one trick to the row above it. The dataclass defaults
are the paper's baseline (§2.1): ResNet-50, NAG, batch 256, lr 0.1, 120 epochs, step decay
at 30/60/90, no tricks.
"""
import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from typing import Optional

import yaml

from ..data import DataConfig
from ..errors import UserError
from ..models import MODEL_NAMES, RESNETS, input_size as network_input_size

try:
    import tomllib
except ImportError:  # Python < 3.11: TOML recipes need it, YAML ones do not
    tomllib = None


class ConfigError(UserError):
    """A recipe or override is wrong; the message is one line naming the file or key."""


@dataclass
class TrainConfig:
    # --- network (paper §2.1, §4) ---
    model: str = "resnet50_v1"
    classes: int = 1000
    zero_gamma: bool = False  # §3.1: last BN gamma of each residual block starts at 0
    # --- optimisation (§2.1, §3) ---
    batch_size: int = 256  # global: over all devices and ranks
    base_lr_per_256: float = 0.1  # §3.1 linear scaling: lr = base_lr_per_256 * batch_size / 256
    momentum: float = 0.9  # NAG
    wd: float = 1e-4
    no_bias_decay: bool = False  # §3.1: weight decay on conv/dense weights only
    dtype: str = "float32"  # "float16": FP16 weights and activations, FP32 master copy (§3.2)
    loss_scale: str = "dynamic"  # FP16 only: "dynamic" or a number for a static scale
    # --- schedule (§2.1, §3.1, §5.1) ---
    epochs: int = 120
    warmup_epochs: int = 0  # §3.1: linear from lr/m to lr over the first m batches
    lr_mode: str = "step"  # "step" or "cosine" (§5.1)
    lr_step_epochs: list = field(default_factory=lambda: [30, 60, 90])
    lr_step_factor: float = 0.1
    # --- refinements (§5) ---
    label_smoothing: float = 0.0  # epsilon
    label_smoothing_mode: str = "paper"  # "paper": 1-eps / eps/(K-1); "gluoncv": eps/K everywhere
    mixup_alpha: float = 0.0  # 0 = off; the paper uses 0.2 (and 200 epochs)
    mixup_off_epochs: int = 0  # train the last N epochs without mixing
    distill: bool = False  # §5.3 knowledge distillation from `teacher`
    teacher: Optional[str] = None  # run folder, checkpoint or GluonCV .params of the teacher
    teacher_model: str = "resnet152_v1d"
    temperature: float = 20.0  # distillation T
    # None: the paper's Eq. 6, hard + T^2 soft. A weight w in [0, 1]: GluonCV's
    # w * hard + (1 - w) * T^2 soft (its train_imagenet.py uses w = 0.5, half of Eq. 6)
    hard_weight: Optional[float] = None
    # the recipe the teacher is trained with, relative to recipes/ (the paper trains the
    # teacher with mixup when the student uses mixup, §5.5); a teacher run from another
    # recipe is named in the log
    teacher_recipe: Optional[str] = None
    # fine-tuning: start from these weights (run folder or .params, ours or GluonCV's): every
    # parameter whose name and shape match; the rest (a classifier for other classes) fresh
    init: Optional[str] = None
    # --- data (§2.1): input size, augmentation, normalisation, decoding threads ---
    data: DataConfig = field(default_factory=DataConfig)
    # --- bookkeeping ---
    seed: int = 0
    log_interval: int = 50  # batches between progress lines
    keep_checkpoints: int = 3  # the last k epochs' checkpoints, plus the best
    paper: Optional[str] = None  # the paper row this recipe reproduces, e.g. "table6/resnet50_v1d/mixup"
    description: str = ""

    def __post_init__(self):
        if isinstance(self.data, dict):
            self.data = DataConfig(**self.data)
        if self.data.input_size is None:  # the network's own: 224, 299 for Inception-V3
            self.data = self.data.replace(input_size=network_input_size(self.model))

    def peak_lr(self):
        """The learning rate after linear scaling (§3.1), reached at the end of warmup."""
        return self.base_lr_per_256 * self.batch_size / 256

    def to_dict(self):
        """Plain values (tuples as lists), as config.yaml holds them."""
        return yaml.safe_load(yaml.dump(dataclasses.asdict(self), Dumper=_TupleDumper,
                                        sort_keys=False))


class _TupleDumper(yaml.SafeDumper):
    """A safe dumper that writes tuples as lists."""


_TupleDumper.add_representer(tuple, yaml.SafeDumper.represent_list)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
DATA_FIELDS = {f.name: f for f in dataclasses.fields(DataConfig)}
TYPES = {**{f"data.{k}": v for k, v in typing.get_type_hints(DataConfig).items()},
         **typing.get_type_hints(TrainConfig)}
CHOICES = {
    "dtype": ("float32", "float16"),
    "lr_mode": ("step", "cosine"),
    "label_smoothing_mode": ("paper", "gluoncv"),
    "model": tuple(MODEL_NAMES),
    "teacher_model": tuple(MODEL_NAMES),
}
# Old spellings that run folders written by earlier versions hold in their config.yaml: read
# as the new keys, so that those runs still resume and feed the report tools.
RENAMED_KEYS = {"input_size": "data.input_size"}
RENAMED_VALUES = {("label_smoothing_mode", "mxnet"): "gluoncv"}
# (low, high, low inclusive, high inclusive); None = unbounded
RANGES = {
    "classes": (1, None, True, None), "batch_size": (1, None, True, None),
    "base_lr_per_256": (0, None, True, None), "momentum": (0, 1, True, False),
    "wd": (0, None, True, None), "epochs": (1, None, True, None),
    "warmup_epochs": (0, None, True, None), "lr_step_factor": (0, 1, False, True),
    "label_smoothing": (0, 1, True, False), "mixup_alpha": (0, None, True, None),
    "mixup_off_epochs": (0, None, True, None), "temperature": (0, None, False, None),
    "hard_weight": (0, 1, True, True),
    "seed": (0, 2 ** 31 - 1, True, True), "log_interval": (1, None, True, None),
    "keep_checkpoints": (0, None, True, None),
    "data.input_size": (1, None, True, None), "data.val_resize": (1, None, True, None),
    "data.num_workers": (0, None, True, None), "data.prefetch_batches": (1, None, True, None),
    "data.check_train_images": (0, None, True, None),
    "data.interpolation": (0, 4, True, True),
}


def _read(path):
    try:
        with open(path, "rb") as f:
            if path.endswith(".toml"):
                if tomllib is None:
                    raise ConfigError(f"{path}: TOML recipes need Python >= 3.11; use YAML")
                return tomllib.load(f)
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: recipe not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a recipe file (.yaml or .toml)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a recipe") from None
    except (yaml.YAMLError, ValueError) as e:  # tomllib.TOMLDecodeError is a ValueError
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{path}: not valid {'TOML' if path.endswith('.toml') else 'YAML'}: "
                          f"{' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys to values")
    return data


def recipe_chain(path):
    """The recipe files from the root base to ``path`` (each one's ``base:`` resolved)."""
    chain, seen = [], set()
    while path is not None:
        path = os.path.normpath(path)
        if path in seen:
            raise ConfigError(f"{path}: 'base:' chain loops back to this file")
        seen.add(path)
        if chain and not os.path.exists(path):
            raise ConfigError(f"{chain[-1][0]}: base recipe {path} not found")
        data = _read(path)
        chain.append((path, data))
        base = data.get("base")
        if base is not None and not isinstance(base, str):
            raise ConfigError(f"{path}: 'base' must be a recipe path, got {base!r}")
        path = None if base is None else os.path.join(os.path.dirname(path), base)
    return chain[::-1]


@dataclass(frozen=True)
class Schema:
    """What a recipe may hold: the dataclass it fills, its keys' types (a section's keys as
    ``data.KEY``), choices and ranges, and the cross-field checks of the resolved value.
    :data:`TRAIN` is the classification trainer's; the transfer trainer has its own."""
    cls: type
    types: dict
    choices: dict
    ranges: dict
    validate: typing.Callable
    section: Optional[type] = None  # the dataclass of ``data:`` (DataConfig), if any

    @property
    def keys(self):
        return [k for k in self.types if "." not in k and k != "data"]


def _check_key(key, where, schema):
    """``key`` is a field of the schema's dataclass or ``data.<section field>``."""
    if schema.section is not None and key.startswith("data."):
        if key not in schema.types:
            known = [k[len("data."):] for k in schema.types if k.startswith("data.")]
            raise ConfigError(f"{where}: unknown key '{key}' (data keys: {', '.join(known)})")
    elif key not in schema.types or "." in key or key == "data":
        extra = ", data.KEY" if schema.section is not None else ""
        raise ConfigError(f"{where}: unknown key '{key}' (valid keys: "
                          f"{', '.join(schema.keys)}{extra})")


def _coerce(key, value, where, schema):
    """Check a value against the field's type (ints are accepted for floats, lists for
    tuples) and its choices and range; returns the value as the field holds it."""
    expected = schema.types[key]
    optional = typing.get_origin(expected) is typing.Union
    if optional:
        expected = next(t for t in typing.get_args(expected) if t is not type(None))
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: '{key}' cannot be null")
    if key == "loss_scale" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if expected in (list, tuple):
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{where}: '{key}' must be a list of numbers, got {value!r}")
        value = expected(value)
    elif expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected in (int, float) and isinstance(value, bool)):
        raise ConfigError(f"{where}: '{key}' must be {expected.__name__}, got {value!r}")
    if expected is float and not math.isfinite(value):
        raise ConfigError(f"{where}: '{key}' must be a finite number, got {value!r}")
    choices = schema.choices.get(key)
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: '{key}' must be one of {', '.join(choices)}, "
                          f"got {value!r}")
    if key in schema.ranges:
        low, high, low_in, high_in = schema.ranges[key]
        if (low is not None and (value < low or (value == low and not low_in))) or \
                (high is not None and (value > high or (value == high and not high_in))):
            bounds = (f"{'[' if low_in else '('}{low}, "
                      f"{'inf)' if high is None else str(high) + (']' if high_in else ')')}")
            raise ConfigError(f"{where}: '{key}' must be in {bounds}, got {value!r}")
    return value


def _settings(content, where, schema):
    """(key, value) pairs of one recipe mapping, ``data:`` flattened to ``data.KEY``, old
    spellings renamed."""
    for key, value in content.items():
        if key == "base":
            continue
        if key == "data" and schema.section is not None:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: 'data' must be a mapping of data.KEY values")
            for sub, v in value.items():
                yield f"data.{sub}", v
            continue
        yield key, value


def _set(values, key, value, where, schema):
    key = RENAMED_KEYS.get(key, key) if isinstance(key, str) else key
    if not isinstance(key, str):
        raise ConfigError(f"{where}: key {key!r} is not a name")
    _check_key(key, where, schema)
    value = RENAMED_VALUES.get((key, value), value) if isinstance(value, str) else value
    values[key] = _coerce(key, value, where, schema)


def parse_override(text):
    """``key=value`` from ``--set``; the value is parsed as YAML (numbers, booleans, lists).
    ``data.KEY=value`` sets a field of the data config."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {text}: expected key=value")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if raw.strip() == "":
        value = None
    return key.strip(), value


def resolve(recipe=None, overrides=()):
    """Build the configuration: dataclass defaults, then each recipe of the ``base:`` chain,
    then ``overrides`` (an iterable of (key, value) pairs, e.g. from ``--set``; data fields
    as ``data.KEY``).

    Raises ConfigError (one line, naming the file or flag) for unknown keys, wrong types,
    values out of range and settings that contradict each other.
    """
    return build(recipe_chain(recipe) if recipe is not None else [], overrides, TRAIN)


def from_saved(config, where):
    """The TrainConfig of a run folder's config.yaml, read as a dict (``where`` names the
    file in errors); old spellings are read as the current keys."""
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: expected a mapping of configuration keys")
    return build([(where, config)], (), TRAIN)


def build(sources, overrides, schema):
    """The ``schema.cls`` configuration of ``sources`` ((where, mapping) pairs, the root base
    first) and ``overrides`` ((key, value) pairs); ConfigError (one line) naming the file
    or flag of the first wrong setting."""
    values = {}
    last_where = "defaults"
    for path, content in sources:
        for key, value in _settings(content, path, schema):
            _set(values, key, value, path, schema)
        last_where = path
    for key, value in overrides:
        if key == "data" and schema.section is not None:
            raise ConfigError("--set data: set data fields one by one, as data.KEY=VALUE")
        _set(values, key, value, f"--set {key}", schema)
        last_where = f"--set {key}"
    top = {k: v for k, v in values.items() if "." not in k}
    try:
        if schema.section is not None:
            data = {k[len("data."):]: v for k, v in values.items() if k.startswith("data.")}
            top["data"] = schema.section(**data)
        cfg = schema.cls(**top)
    except UserError as e:  # DataConfig's own cross-field checks (DataError)
        raise ConfigError(f"{last_where}: {e}") from None
    try:
        schema.validate(cfg)
    except ConfigError as e:
        raise ConfigError(f"{last_where}: {e}") from None
    return cfg


def validate(cfg):
    """Cross-field checks that no single key can make."""
    if not cfg.warmup_epochs < cfg.epochs:
        raise ConfigError(f"need warmup_epochs < epochs, got {cfg.warmup_epochs} and "
                          f"{cfg.epochs}")
    if cfg.mixup_off_epochs > cfg.epochs:
        raise ConfigError(f"need mixup_off_epochs <= epochs, got {cfg.mixup_off_epochs} and "
                          f"{cfg.epochs}")
    if any(b <= a for a, b in zip(cfg.lr_step_epochs, cfg.lr_step_epochs[1:])) or \
            any(e <= 0 for e in cfg.lr_step_epochs):
        raise ConfigError(f"lr_step_epochs must be positive and increasing, got "
                          f"{list(cfg.lr_step_epochs)}")
    if cfg.loss_scale != "dynamic":
        try:
            scale = float(cfg.loss_scale)
        except ValueError:
            raise ConfigError(f"loss_scale must be 'dynamic' or a number, got "
                              f"{cfg.loss_scale!r}") from None
        if not (math.isfinite(scale) and scale > 0):
            raise ConfigError(f"loss_scale must be a positive number, got {scale}")
    if cfg.zero_gamma and cfg.model not in RESNETS:
        raise ConfigError(f"zero_gamma applies to residual blocks; {cfg.model} has none "
                          "(zero_gamma: false)")


TRAIN = Schema(TrainConfig, TYPES, CHOICES, RANGES, validate, section=DataConfig)


# What may differ when a run resumes: a longer (or shorter) schedule, and how it is run and
# logged. Anything else (lr, seed, model, data augmentation, ...) would make the resumed run
# another experiment under the same name.
RESUMABLE = ("epochs", "log_interval", "keep_checkpoints", "data.num_workers",
             "data.prefetch_batches", "data.check_train_images")


def resume_changes(saved, cfg, resumable=RESUMABLE):
    """{key: [old, new]} of the settings in which ``cfg`` departs from ``saved`` (the run's
    configuration); ConfigError (one line) naming any that may not change on resume (any
    not in ``resumable``)."""
    old, new = _flat(saved.to_dict()), _flat(cfg.to_dict())
    changed = {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new))
               if old.get(k) != new.get(k)}
    refused = [k for k in changed if k not in resumable]
    if refused:
        shown = ", ".join(f"{k} {changed[k][0]!r} -> {changed[k][1]!r}" for k in refused)
        raise ConfigError(f"{shown} would change the run; only {', '.join(resumable)} may "
                          "change on resume (start a new run with another --out)")
    return changed


def _flat(config):
    flat = {k: v for k, v in config.items() if k != "data"}
    flat.update({f"data.{k}": v for k, v in config.get("data", {}).items()})
    return flat


def dumps(cfg):
    """The resolved configuration as YAML text, for people."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)
