"""The recipe engine both trainers use: a recipe is a YAML (or TOML) file of the keys of a
configuration dataclass, that may name the recipe it builds on with ``base:`` and states
only what differs, as each row of the paper's tables adds one trick to the row above it.

A trainer declares its dataclass(es) and a :class:`Schema` (types, choices, ranges, its
cross-field checks, what may change on resume), and a :class:`RecipeBook` that picks the
schema a recipe asks for; the engine does the rest: the ``base:`` chain, ``--set KEY=VALUE``
overrides, coercion and checks with one-line errors naming the file or flag, reading a run
folder's saved config.yaml back, the resume rules and the YAML dump.

A section of the dataclass (``data:`` of the classification recipes) is spelled
``data.KEY`` in overrides, in errors and in what a resume reports.
"""
import dataclasses
import math
import os
import reprlib
import typing
from dataclasses import dataclass
from typing import Optional

import yaml

from ..errors import UserError

try:
    import tomllib
except ImportError:  # Python < 3.11: TOML recipes need it, YAML ones do not
    tomllib = None

SECTION = "data"  # the one section key a schema may have
# A recipe is a few dozen keys (the largest of ours is under 2 KiB, nested 3 deep): the
# bounds refuse files that could only be a mistake or an attack before they are parsed.
MAX_RECIPE_BYTES = 1 << 20
MAX_DEPTH = 10
SHOWN_CHARS = 80  # a value quoted in an error is cut to this many characters


class ConfigError(UserError):
    """A recipe or override is wrong; the message is one line naming the file or key."""


def cut(text, limit=SHOWN_CHARS):
    """``text`` cut to ``limit`` characters (ending in "..."), for quoting in one-line errors
    whatever a user wrote."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


_REPR = reprlib.Repr()
# reprlib walks at most this much of a value: a full repr of a value read with aliases (a
# run folder's config.yaml) could be 10^9 items long before it is cut
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 8, 8, 8
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN_CHARS


def shown(value, limit=SHOWN_CHARS):
    """``repr(value)`` cut to ``limit`` characters (:func:`cut`), without walking more of
    ``value`` than it shows."""
    return cut(_REPR.repr(value), limit)


class _RecipeLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader without aliases, keys given twice, or more than MAX_DEPTH
    levels of nesting. Aliases are refused, not counted: no recipe needs one (``base:`` is
    how recipes share values), and an alias is a shared reference, so 400 bytes of them
    (a "billion laughs") are a value of 10^9 items for whoever walks it."""

    def __init__(self, stream, where):
        super().__init__(stream)
        self.where, self.depth = where, 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(f"{self.where}:{line}: the YAML alias *{cut(event.anchor)} is "
                              "not allowed in a recipe; write the value out")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConfigError(f"{self.where}:{line}: nested over {MAX_DEPTH} levels deep, too "
                              "deep to be a recipe")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        """A mapping whose keys are all different: YAML's loaders keep the last of a key
        written twice, so a recipe's first value would be dropped without a word."""
        self.flatten_mapping(node)
        seen = set()
        for key_node, _ in node.value:
            key = (key_node.tag, key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            if key in seen:
                raise ConfigError(f"{self.where}:{key_node.start_mark.line + 1}: key "
                                  f"{cut(key_node.value)!r} is given twice; keep one")
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text, where):
    """The YAML document ``text`` (str or bytes) as plain values, read by
    :class:`_RecipeLoader` (``where`` names it in errors): ConfigError (one line) for an
    alias or nesting over MAX_DEPTH; yaml.YAMLError if it is not YAML."""
    loader = _RecipeLoader(text, where)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class _ListDumper(yaml.SafeDumper):
    """A safe dumper that writes tuples as lists."""


_ListDumper.add_representer(tuple, yaml.SafeDumper.represent_list)


def to_dict(cfg):
    """A configuration dataclass as plain values (tuples as lists), as config.yaml holds it."""
    return yaml.safe_load(yaml.dump(dataclasses.asdict(cfg), Dumper=_ListDumper,
                                    sort_keys=False))


def dumps(cfg):
    """The resolved configuration as YAML text, for people."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


class Config:
    """Base of the configuration dataclasses a :class:`Schema` fills."""

    def to_dict(self):
        """Plain values (tuples as lists), as config.yaml holds them."""
        return to_dict(self)


@dataclass(frozen=True)
class Schema:
    """What a recipe may hold: the dataclass it fills, its keys' types (a section's keys as
    ``data.KEY``), choices and ranges (low, high, low inclusive, high inclusive; None is
    unbounded), the cross-field checks of the resolved value (``check_config(cfg)`` raising
    ConfigError, which is prefixed with the file or flag set last; another UserError, about
    no recipe setting, goes out as it is) and the keys that may change when a run resumes."""
    cls: type
    types: dict
    choices: dict
    ranges: dict
    check_config: typing.Callable
    resumable: tuple = ()
    section: Optional[type] = None  # the dataclass of ``data:`` (DataConfig), if any
    numbers_as_text: tuple = ()  # text keys that also take a number ("dynamic" or 1024)
    # defaults that depend on other keys: {key: value} for the keys set so far
    # ({key: value}); a key the sources and overrides leave unset takes it
    derived: typing.Callable = lambda values: {}

    @property
    def keys(self):
        return [k for k in self.types if "." not in k and k != SECTION]


def type_hints(cls, section=None):
    """The types of ``cls``'s fields, a section's fields as ``data.KEY``."""
    types = typing.get_type_hints(cls)
    if section is None:
        return types
    return {**{f"{SECTION}.{k}": v for k, v in typing.get_type_hints(section).items()},
            **types}


class RecipeBook:
    """The recipes of one trainer: its schemas by name, and ``pick(sources, overrides)``,
    which names the schema a recipe asks for (a single schema needs none)."""

    def __init__(self, schemas, pick=None):
        self.schemas = schemas if isinstance(schemas, dict) else {None: schemas}
        self.pick = pick or (lambda sources, overrides: None)

    def build(self, sources, overrides=()):
        """The configuration of ``sources`` ((where, mapping) pairs, the root base first)
        and ``overrides`` ((key, value) pairs)."""
        overrides = list(overrides)
        return build(sources, overrides, self.schemas[self.pick(sources, overrides)])

    def resolve(self, recipe=None, overrides=()):
        """Dataclass defaults, then each recipe of the ``base:`` chain of ``recipe``, then
        ``overrides`` (e.g. from ``--set``; section fields as ``data.KEY``). ConfigError
        (one line, naming the file or flag) for unknown keys, wrong types, values out of
        range and settings that contradict each other."""
        return self.build(recipe_chain(recipe) if recipe is not None else [], overrides)

    def from_saved(self, config, where):
        """The configuration of a run folder's config.yaml, read as a dict (``where`` names
        the file in errors)."""
        if not isinstance(config, dict):
            raise ConfigError(f"{where}: expected a mapping of configuration keys")
        return self.build([(where, config)])

    def resume_changes(self, saved, cfg):
        """{key: [old, new]} of the settings in which ``cfg`` departs from ``saved`` (the
        run's configuration); ConfigError (one line) naming any that may not change on
        resume. Anything but how long the run is and how it is run and logged would make
        the resumed run another experiment under the same name."""
        resumable = self.schemas[self.pick([("saved", to_dict(saved))], ())].resumable
        changed = config_diff(to_dict(saved), to_dict(cfg))
        refused = [k for k in changed if k not in resumable]
        if refused:
            what = ", ".join(f"{k} {shown(changed[k][0])} -> {shown(changed[k][1])}"
                             for k in refused)
            raise ConfigError(f"{what} would change the run; only {', '.join(resumable)} may "
                              "change on resume (start a new run with another --out)")
        return changed


def config_diff(old, new):
    """{key: [old value, new value]} of the keys whose values differ between two
    configurations as plain values (dicts as config.yaml holds them), sorted by key; a key
    one of them lacks has the value None there. A nested mapping (``data``) is compared key
    by key, as ``data.KEY``."""
    old, new = _flat(old), _flat(new)
    return {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)}


def _flat(config, prefix=""):
    """{"key": value, "section.key": value} of a configuration mapping."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# ----------------------------------------------------------------------------- reading

def read_recipe(path):
    """One recipe file as a mapping ({} for an empty file); ConfigError (one line), also
    for a file over MAX_RECIPE_BYTES, one that is not a regular file (a FIFO), a YAML alias,
    a key given twice or nesting over MAX_DEPTH."""
    if os.path.exists(path) and not (os.path.isfile(path) or os.path.isdir(path)):
        # a FIFO or a device: reading it could wait forever
        raise ConfigError(f"{path}: not a regular file (a FIFO or a device?); name a recipe file")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_RECIPE_BYTES + 1)
        if len(raw) > MAX_RECIPE_BYTES:
            raise ConfigError(f"{path}: over {MAX_RECIPE_BYTES // 1024} KiB, too large to be a "
                              "recipe")
        if path.endswith(".toml"):
            if tomllib is None:
                raise ConfigError(f"{path}: TOML recipes need Python >= 3.11; use YAML")
            return _mapping(tomllib.loads(raw.decode("utf-8")), path)
        return _mapping(load_yaml(raw, path), path)
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
                          f"{' '.join(str(e).split())[:2 * SHOWN_CHARS]}") from None


def _mapping(data, path):
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys to values")
    return data


def recipe_chain(path):
    """(path, mapping) of the recipe files from the root base to ``path`` (each one's
    ``base:`` resolved relative to it)."""
    chain, seen = [], set()
    while path is not None:
        path = os.path.normpath(path)
        if path in seen:
            raise ConfigError(f"{path}: 'base:' chain loops back to this file")
        seen.add(path)
        if chain and not os.path.exists(path):
            raise ConfigError(f"{chain[-1][0]}: base recipe {path} not found")
        data = read_recipe(path)
        chain.append((path, data))
        base = data.get("base")
        if base is not None and not isinstance(base, str):
            raise ConfigError(f"{path}: 'base' must be a recipe path, got {shown(base)}")
        path = None if base is None else os.path.join(os.path.dirname(path), base)
    return chain[::-1]


def parse_override(text):
    """``key=value`` from ``--set``; the value is parsed as YAML (numbers, booleans, lists).
    ``data.KEY=value`` sets a field of the data section."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {cut(text)}: expected key=value")
    try:
        value = load_yaml(raw, f"--set {cut(key.strip())}")
    except ConfigError:
        raise
    except (yaml.YAMLError, ValueError):  # not YAML, or an int too long to convert: the text
        value = raw
    if raw.strip() == "":
        value = None
    return key.strip(), value


# ----------------------------------------------------------------------------- building

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
        if key == SECTION and schema.section is not None:
            raise ConfigError("--set data: set data fields one by one, as data.KEY=VALUE")
        where = f"--set {cut(key) if isinstance(key, str) else shown(key)}"
        _set(values, key, value, where, schema)
        last_where = where
    for key, value in schema.derived(values).items():
        if key not in values:
            values[key] = coerce(key, value, "defaults", schema)
    top = {k: v for k, v in values.items() if "." not in k}
    try:
        if schema.section is not None:
            prefix = SECTION + "."
            top[SECTION] = schema.section(**{k[len(prefix):]: v for k, v in values.items()
                                             if k.startswith(prefix)})
        cfg = schema.cls(**top)
    except UserError as e:  # a section's own cross-field checks (DataError)
        raise ConfigError(f"{last_where}: {e}") from None
    try:
        schema.check_config(cfg)
    except ConfigError as e:
        raise ConfigError(f"{last_where}: {e}") from None
    return cfg


def _settings(content, where, schema):
    """(key, value) pairs of one recipe mapping, the section flattened to ``data.KEY``."""
    for key, value in content.items():
        if key == "base":
            continue
        if key == SECTION and schema.section is not None:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: 'data' must be a mapping of data.KEY values")
            for sub, v in value.items():
                yield f"{SECTION}.{sub}", v
            continue
        yield key, value


def _set(values, key, value, where, schema):
    if not isinstance(key, str):
        raise ConfigError(f"{where}: key {shown(key)} is not a name")
    _check_key(key, where, schema)
    values[key] = coerce(key, value, where, schema)


def _check_key(key, where, schema):
    """``key`` is a field of the schema's dataclass or ``data.<section field>``."""
    if schema.section is not None and key.startswith(SECTION + "."):
        if key not in schema.types:
            known = [k[len(SECTION) + 1:] for k in schema.types if k.startswith(SECTION + ".")]
            raise ConfigError(f"{where}: unknown key '{cut(key)}' (data keys: {', '.join(known)})")
    elif key not in schema.types or "." in key or key == SECTION:
        extra = ", data.KEY" if schema.section is not None else ""
        raise ConfigError(f"{where}: unknown key '{cut(key)}' (valid keys: "
                          f"{', '.join(schema.keys)}{extra})")


def coerce(key, value, where, schema):
    """Check a value against the field's type (ints and what ``float()`` reads are accepted
    for floats, lists for tuples, numbers for the schema's ``numbers_as_text``; a list's
    elements one by one) and its choices and range (each element's, for a list); returns
    the value as the field holds it."""
    expected = schema.types[key]
    optional = typing.get_origin(expected) is typing.Union
    if optional:
        expected = next(t for t in typing.get_args(expected) if t is not type(None))
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: '{key}' cannot be null")
    if key in schema.numbers_as_text and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        value = str(value)
    value = _as_type(key, value, expected, where)
    choices = schema.choices.get(key)
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: '{key}' must be one of {', '.join(map(str, choices))}, "
                          f"got {shown(value)}")
    if key in schema.ranges:
        _check_range(key, value, schema.ranges[key], where)
    return value


def _as_type(key, value, expected, where):
    """``value`` as the type ``expected`` (a list or tuple type, maybe of ints or floats:
    ``List[int]``) or ConfigError (one line): numbers as text that ``float()`` reads for a
    float (YAML 1.1 reads ``5e-5`` as text), every float finite, every element checked."""
    container = typing.get_origin(expected) or expected
    if container in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: '{key}' must be a list of numbers, got {shown(value)}")
        item = (typing.get_args(expected) or (None,))[0]
        return container(_as_number(f"{key}[{i}]", v, item, where) for i, v in enumerate(value))
    if expected in (int, float):
        return _as_number(key, value, expected, where)
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: '{key}' must be {expected.__name__}, got {shown(value)}")
    return value


def _as_number(key, value, expected, where):
    """``value`` as an int, a float, or (``expected`` None) either; floats finite."""
    if expected is float and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass  # refused below, as any other text
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected or (int, float)) or isinstance(value, bool):
        what = expected.__name__ if expected else "a number"
        raise ConfigError(f"{where}: '{key}' must be {what}, got {shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: '{key}' must be a finite number, got {shown(value)}")
    return value


def _check_range(key, value, bounds, where):
    """``value`` (a number, or each of a list's) within ``bounds``, or ConfigError."""
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_range(f"{key}[{i}]", v, bounds, where)
        return
    low, high, low_in, high_in = bounds
    if (low is not None and (value < low or (value == low and not low_in))) or \
            (high is not None and (value > high or (value == high and not high_in))):
        bounds_text = (f"{'[' if low_in else '('}{low}, "
                       f"{'inf)' if high is None else str(high) + (']' if high_in else ')')}")
        raise ConfigError(f"{where}: '{key}' must be in {bounds_text}, got {shown(value)}")
