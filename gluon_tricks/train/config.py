"""Training configuration: one dataclass, filled from recipe files and command-line overrides.

A recipe is a YAML (or TOML) file of keys of :class:`TrainConfig`. It may name the
recipe it builds on with ``base:`` (a path relative to the recipe), and states only
what differs, as each row of the paper's tables adds one trick to the row above it.
The dataclass defaults are the paper's baseline (§2.1): ResNet-50, NAG, batch 256,
lr 0.1, 120 epochs, step decay at 30/60/90, no tricks.
"""
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Optional

import yaml

from ..errors import UserError

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
    input_size: Optional[int] = None  # pixels; None = the network's own (224, 299 for Inception)
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
    label_smoothing_mode: str = "paper"  # "paper": 1-eps / eps/(K-1); "mxnet": eps/K everywhere
    mixup_alpha: float = 0.0  # 0 = off; the paper uses 0.2 (and 200 epochs)
    mixup_off_epochs: int = 0  # train the last N epochs without mixing
    distill: bool = False  # §5.3 knowledge distillation from `teacher`
    teacher: Optional[str] = None  # run folder, checkpoint or GluonCV .params of the teacher
    teacher_model: str = "resnet152_v1d"
    temperature: float = 20.0  # distillation T
    # --- data (SPEC §1; augmentation constants live in gluon_tricks.data) ---
    data: dict = field(default_factory=dict)  # fields of gluon_tricks.data.DataConfig
    # --- bookkeeping ---
    seed: int = 0
    log_interval: int = 50  # batches between progress lines
    keep_checkpoints: int = 3  # the last k epochs' checkpoints, plus the best
    paper: Optional[str] = None  # the paper row this recipe reproduces, e.g. "table6/resnet50_v1d/mixup"
    description: str = ""

    def peak_lr(self):
        """The learning rate after linear scaling (§3.1), reached at the end of warmup."""
        return self.base_lr_per_256 * self.batch_size / 256

    def to_dict(self):
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
CHOICES = {
    "dtype": ("float32", "float16"),
    "lr_mode": ("step", "cosine"),
    "label_smoothing_mode": ("paper", "mxnet"),
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
        data = _read(path)
        chain.append((path, data))
        base = data.get("base")
        path = None if base is None else os.path.join(os.path.dirname(path), base)
    return chain[::-1]


def _check_key(key, where):
    if key not in FIELDS:
        raise ConfigError(f"{where}: unknown key '{key}' (valid keys: {', '.join(FIELDS)})")


def _coerce(key, value, where):
    """Check a value's type against the field's; YAML gives ints where floats are meant."""
    default = FIELDS[key].default
    if default is dataclasses.MISSING:
        default = FIELDS[key].default_factory()
    expected = type(default)
    if value is None:
        if default is not None:
            raise ConfigError(f"{where}: '{key}' cannot be null")
        return None
    if default is None:  # Optional[...]: int for input_size, str otherwise
        expected = int if key == "input_size" else str
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if key == "loss_scale":
        value = str(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: '{key}' must be {expected.__name__}, got {value!r}")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{where}: '{key}' must be one of {', '.join(CHOICES[key])}, "
                          f"got {value!r}")
    return value


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
    then ``overrides`` (an iterable of (key, value) pairs, e.g. from ``--set``).

    Raises ConfigError (one line, naming the file or flag) for unknown keys or bad values.
    """
    values = {}
    data = {}
    if recipe is not None:
        for path, content in recipe_chain(recipe):
            for key, value in content.items():
                if key == "base":
                    continue
                _check_key(key, path)
                if key == "data":
                    if not isinstance(value, dict):
                        raise ConfigError(f"{path}: 'data' must be a mapping")
                    data.update(value)
                else:
                    values[key] = _coerce(key, value, path)
    for key, value in overrides:
        if key.startswith("data."):
            data[key[len("data."):]] = value
            continue
        _check_key(key, f"--set {key}")
        if key == "data":
            raise ConfigError("--set data: set data fields one by one, as data.KEY=VALUE")
        values[key] = _coerce(key, value, f"--set {key}")
    cfg = TrainConfig(**values, data=data)
    validate(cfg)
    return cfg


def validate(cfg):
    """Cross-field checks that no single key can make."""
    if cfg.batch_size <= 0:
        raise ConfigError(f"batch_size must be positive, got {cfg.batch_size}")
    if cfg.epochs <= 0 or not 0 <= cfg.warmup_epochs < cfg.epochs:
        raise ConfigError(f"need 0 <= warmup_epochs < epochs, got {cfg.warmup_epochs} and "
                          f"{cfg.epochs}")
    if not 0 <= cfg.label_smoothing < 1:
        raise ConfigError(f"label_smoothing must be in [0, 1), got {cfg.label_smoothing}")
    if cfg.mixup_alpha < 0 or not 0 <= cfg.mixup_off_epochs <= cfg.epochs:
        raise ConfigError("mixup_alpha must be >= 0 and 0 <= mixup_off_epochs <= epochs")
    if cfg.loss_scale != "dynamic":
        try:
            scale = float(cfg.loss_scale)
        except ValueError:
            raise ConfigError(f"loss_scale must be 'dynamic' or a number, got "
                              f"{cfg.loss_scale!r}") from None
        if scale <= 0:
            raise ConfigError(f"loss_scale must be positive, got {scale}")
    if cfg.temperature <= 0:
        raise ConfigError(f"temperature must be positive, got {cfg.temperature}")


def save(cfg, path):
    """Write the resolved configuration as YAML (re-loadable as a recipe without ``base``)."""
    with open(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)


def dumps(cfg):
    """The resolved configuration as YAML text, for people."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)
