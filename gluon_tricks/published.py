"""The authors' published ImageNet runs, as data: the training logs and command lines GluonCV
keeps in ``dmlc/web-data`` under ``gluoncv/logs/classification/imagenet/``.

Each log opens with the argparse ``Namespace`` of GluonCV's ``train_imagenet.py``, prints
``Epoch[e] Batch [b] ... lr=...`` every ``log_interval`` batches and, per epoch, a training
metric, the throughput and the validation *error*; :func:`parse_log` reads that text (both
the older ``INFO:root:`` format and the later bare one). :func:`read_folder` and
:func:`write` condense a folder of such files into :data:`DATA_FILE` (see
``tools/condense_published_logs.py``); :func:`load` and :func:`run` read it back.

Validation errors are stored as accuracies in percent, ``100 * (1 - err)``, like
:mod:`gluon_tricks.paper`. The training metric is kept under the name the log gives it
(``accuracy``, ``rmse`` under mixup, ``err-top1`` in the older logs) and unconverted: with
label smoothing GluonCV's ``accuracy`` is not a top-1 accuracy.

Where only parts of a log were read, :attr:`PublishedRun.read_ranges` says which characters;
:attr:`PublishedRun.complete` is True when they cover the whole file (every run of the
committed data file was read whole).

Not every validation line of a published log is a measurement: ``resnet152_v1d.log`` prints
``err-top1 = err-top5 = 1 - epoch/120`` at every epoch, a placeholder that ends at "99.17%".
:attr:`PublishedRun.validity` says so, with the reason (:func:`curve_defect` finds it when
the data file is built); such a run's :attr:`~PublishedRun.curve` is empty and its
:attr:`~PublishedRun.final` None, so that nothing prints or compares against it as the
authors' accuracy. Its lr lines and Namespace stay usable.
"""
import ast
import functools
import json
import os
import re
import shlex
from dataclasses import dataclass
from typing import Optional

from .errors import UserError

DATA_FILE = os.path.join(os.path.dirname(__file__), "published_runs.json")

_PREFIX = r"^(?:INFO:root:)?"
_NAMESPACE = re.compile(_PREFIX + r"(Namespace\(.*\))\s*$", re.M)
_LR = re.compile(_PREFIX + r"Epoch\[(\d+)\] Batch \[(\d+)\].*\blr=([0-9.eE+-]+)\s*$", re.M)
_TRAIN = re.compile(_PREFIX + r"\[Epoch (\d+)\] training: ([\w-]+)=([0-9.eE+-]+)\s*$", re.M)
_SPEED = re.compile(_PREFIX + r"\[Epoch (\d+)\] speed: ([0-9.]+) samples/sec\s+"
                    r"time cost: ([0-9.]+)\s*$", re.M)
_VAL = re.compile(_PREFIX + r"\[Epoch (\d+)\] validation: err-top1=([0-9.]+) "
                  r"err-top5=([0-9.]+)\s*$", re.M)


MEASURED = "measured"


@dataclass(frozen=True)
class PublishedEpoch:
    """What a log says about one epoch (0-based, as logged); None where it was not read."""
    epoch: int
    top1: Optional[float] = None  # validation accuracy, percent: 100 * (1 - err-top1)
    top5: Optional[float] = None  # validation top-5 accuracy, percent
    samples_per_sec: Optional[float] = None  # training throughput over all GPUs, images/s
    seconds: Optional[float] = None  # the epoch's training time ("time cost"), s
    train_metric: Optional[str] = None  # the training metric's name as logged
    train_value: Optional[float] = None  # its value at the end of the epoch, as logged


@dataclass(frozen=True)
class ParsedLog:
    """A log's content: the Namespace (argument name -> typed value), every logged
    ``(epoch, batch, lr)`` in order, and the per-epoch records in order.

    ``batch`` is the number the line prints: in the published logs the 0-based index of the
    batch just trained (49, 99, ...); the script at GluonCV's HEAD prints ``i + 1`` (50, 100,
    ...). ``lr`` is the rate that batch's update used, absolute (the script takes ``--lr`` as
    the rate of the whole global batch; it does not rescale it)."""
    namespace: dict
    lr: tuple
    epochs: tuple


@dataclass(frozen=True)
class PublishedRun(ParsedLog):
    """One published run: the log's content and where it came from (``dmlc/web-data`` paths
    and the commits they were read at). ``command`` is the ``.sh`` next to the log, verbatim
    (None if there is none); it is not always the command of this log, see
    :func:`command_mismatches`. ``log_chars`` is the log's length in characters,
    ``read_ranges`` the ``[start, end)`` character ranges of it that were read."""
    name: str
    log_path: str
    log_commit: str
    log_chars: int
    read_ranges: tuple
    sh_path: Optional[str] = None
    sh_commit: Optional[str] = None
    command: Optional[str] = None
    # MEASURED, or why the validation lines are not a measurement (see curve_defect)
    validity: str = MEASURED

    @property
    def curve_measured(self):
        """True when the validation lines are measurements (:attr:`validity`)."""
        return self.validity == MEASURED

    @property
    def curve(self):
        """The epoch records that have a measured validation accuracy, in order: empty when
        :attr:`validity` flags the log's validation lines."""
        if not self.curve_measured:
            return ()
        return tuple(e for e in self.epochs if e.top1 is not None)

    @property
    def complete(self):
        """True when the whole log was read (every lr line and epoch record is here)."""
        end = 0
        for start, stop in sorted(self.read_ranges):
            if start > end:
                return False
            end = max(end, stop)
        return end >= self.log_chars

    @property
    def final(self):
        """The last epoch record of :attr:`curve`: the authors' final validation accuracy
        (None if the log has no measured validation)."""
        return self.curve[-1] if self.curve else None

    def summary(self):
        """One line for tables: ``"name: final top-1"`` (percent), or the name and why the
        log gives no accuracy."""
        if self.final is not None:
            return f"{self.name}: {self.final.top1:.2f}"
        if not self.curve_measured:
            return f"{self.name}: validation flagged ({self.validity.split(':')[0]})"
        return f"{self.name}: no validation logged"


def _accuracy(err):
    """A logged error (a fraction) as an accuracy in percent, to the log's precision."""
    return round(100 * (1 - float(err)), 4)


def curve_defect(epochs, num_epochs):
    """Why the validation records ``epochs`` (:class:`PublishedEpoch`) of a run of
    ``num_epochs`` epochs are not a measurement, or None when nothing says they are not.

    A real top-5 error is below the top-1 error (the true class among five guesses is
    likelier than as the first): a log whose two errors are equal at every epoch did not
    measure them. When they also equal ``1 - epoch/num_epochs`` (to the printed 6 digits),
    the reason names the placeholder."""
    logged = [e for e in epochs if e.top1 is not None]
    if not logged or any(e.top1 != e.top5 for e in logged):
        return None
    if all(abs(e.top1 - 100 * e.epoch / num_epochs) < 1e-3 for e in logged):
        return (f"placeholder, not a measurement: every validation line prints err-top1 = "
                f"err-top5 = 1 - epoch/{num_epochs}, so the 'accuracy' climbs linearly to "
                f"{logged[-1].top1:.2f}%; the lr lines and Namespace are the run's")
    return ("not a measurement: every validation line prints err-top1 = err-top5, which "
            "no real evaluation gives")


def parse_namespace(line, source="<text>"):
    """The keyword arguments of a printed ``Namespace(...)`` as {name: value}, each value
    read with ``ast.literal_eval`` (numbers, strings, booleans, None; nothing is run)."""
    try:
        call = ast.parse(line.strip(), mode="eval").body
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Namespace"):
            raise ValueError("not a Namespace(...) call")
        return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError) as e:
        raise UserError(f"{source}: cannot read its Namespace line ({e}); is it a GluonCV "
                        "train_imagenet.py log?") from None


def parse_log(text, source="<text>"):
    """Read a GluonCV ``train_imagenet.py`` log (or an excerpt of one): a :class:`ParsedLog`.
    Lines that are neither the Namespace, an lr line nor an epoch summary (MXNet's own
    messages, page fragments) are ignored. ``source`` names the text in errors."""
    namespaces = {m.group(1) for m in _NAMESPACE.finditer(text)}
    if not namespaces:
        raise UserError(f"{source}: no Namespace(...) line; is it a GluonCV train_imagenet.py "
                        "log?")
    if len(namespaces) > 1:
        raise UserError(f"{source}: {len(namespaces)} different Namespace lines (a resumed "
                        "run?); split the log into one file per run")
    namespace = parse_namespace(namespaces.pop(), source)
    lr = tuple((int(e), int(b), float(v)) for e, b, v in _LR.findall(text))
    if any(a[:2] >= b[:2] for a, b in zip(lr, lr[1:])):
        raise UserError(f"{source}: lr lines are not in (epoch, batch) order; split the log "
                        "into one file per run")
    records = {}
    for e, name, value in _TRAIN.findall(text):
        records.setdefault(int(e), {}).update(train_metric=name, train_value=float(value))
    for e, speed, seconds in _SPEED.findall(text):
        records.setdefault(int(e), {}).update(samples_per_sec=float(speed),
                                              seconds=float(seconds))
    for e, err1, err5 in _VAL.findall(text):
        records.setdefault(int(e), {}).update(top1=_accuracy(err1), top5=_accuracy(err5))
    epochs = tuple(PublishedEpoch(epoch=e, **fields) for e, fields in sorted(records.items()))
    return ParsedLog(namespace=namespace, lr=lr, epochs=epochs)


def command_args(command):
    """The ``--flag value`` pairs of a ``train_imagenet.py`` command line as {namespace name:
    string}, a bare flag as True (``--lr-mode cosine`` -> ``{"lr_mode": "cosine"}``,
    ``-j 60`` -> ``{"num_workers": "60"}``)."""
    tokens = shlex.split(command.replace("\\\n", " "))
    args = {}
    for i, token in enumerate(tokens):
        if not token.startswith("-"):
            continue
        name = "num_workers" if token == "-j" else token.lstrip("-").replace("-", "_")
        value = tokens[i + 1] if i + 1 < len(tokens) else None
        args[name] = True if value is None or value.startswith("-") else value
    return args


def command_mismatches(run):
    """The arguments on which a run's ``.sh`` and its log's Namespace disagree, as
    [(name, namespace value, command value)]: empty when the ``.sh`` is this log's command.
    Names the Namespace lacks are not compared."""
    if run.command is None:
        return []
    out = []
    for name, given in command_args(run.command).items():
        if name not in run.namespace:
            continue
        logged = run.namespace[name]
        if isinstance(logged, bool) or given is True:
            same = logged is (given is True)
        elif isinstance(logged, (int, float)):
            same = float(given) == float(logged)
        else:
            same = str(logged) == given
        if not same:
            out.append((name, logged, given))
    return out


def read_folder(folder, sources):
    """The runs of ``folder``: for each entry ``name`` of ``sources`` (a dict as
    ``sources.json`` holds it: ``log_path``, ``log_commit``, ``log_chars``, ``read_ranges``
    and optionally ``sh_path``/``sh_commit``), ``folder/name.log`` parsed and
    ``folder/name.sh`` verbatim. An entry's ``validity`` (a reason) flags a curve by hand;
    otherwise :func:`curve_defect` decides. Returns [PublishedRun] in the order of
    ``sources``."""
    runs = []
    for name, src in sources.items():
        log_file = os.path.join(folder, f"{name}.log")
        sh_file = os.path.join(folder, f"{name}.sh")
        try:
            with open(log_file, encoding="utf-8") as f:
                parsed = parse_log(f.read(), source=log_file)
            command = None
            if src.get("sh_path"):
                with open(sh_file, encoding="utf-8") as f:
                    command = f.read()
        except OSError as e:
            raise UserError(f"{e.filename}: {e.strerror}; sources.json lists run {name!r}")
        runs.append(PublishedRun(
            namespace=parsed.namespace, lr=parsed.lr, epochs=parsed.epochs, name=name,
            log_path=src["log_path"], log_commit=src["log_commit"],
            sh_path=src.get("sh_path"), sh_commit=src.get("sh_commit"), command=command,
            log_chars=int(src["log_chars"]),
            read_ranges=tuple(tuple(r) for r in src["read_ranges"]),
            validity=src.get("validity") or curve_defect(
                parsed.epochs, parsed.namespace.get("num_epochs", len(parsed.epochs)))
            or MEASURED))
    return runs


def _lr_segments(lr, every):
    """``(epoch, batch, lr)`` points as ``[epoch, first batch, [lr, ...]]`` runs of
    consecutive lines ``every`` batches apart: the compact form the data file stores."""
    segments = []
    for e, b, v in lr:
        last = segments[-1] if segments else None
        if last and last[0] == e and b == last[1] + every * len(last[2]):
            last[2].append(v)
        else:
            segments.append([e, b, [v]])
    return segments


_EPOCH_FIELDS = ("epoch", "top1", "top5", "samples_per_sec", "seconds", "train_metric",
                 "train_value")


def _to_json(run):
    every = run.namespace.get("log_interval", 50)
    return {"name": run.name, "log_path": run.log_path, "log_commit": run.log_commit,
            "sh_path": run.sh_path, "sh_commit": run.sh_commit, "command": run.command,
            "log_chars": run.log_chars, "read_ranges": [list(r) for r in run.read_ranges],
            "validity": run.validity, "namespace": run.namespace, "lr_every": every,
            "lr": _lr_segments(run.lr, every),
            "epochs": [[getattr(e, k) for k in _EPOCH_FIELDS] for e in run.epochs]}


def _from_json(d):
    every = d["lr_every"]
    lr = tuple((e, b + every * j, v) for e, b, values in d["lr"] for j, v in enumerate(values))
    epochs = tuple(PublishedEpoch(**dict(zip(_EPOCH_FIELDS, row))) for row in d["epochs"])
    return PublishedRun(namespace=d["namespace"], lr=lr, epochs=epochs, name=d["name"],
                        log_path=d["log_path"], log_commit=d["log_commit"],
                        sh_path=d["sh_path"], sh_commit=d["sh_commit"], command=d["command"],
                        log_chars=d["log_chars"],
                        read_ranges=tuple(tuple(r) for r in d["read_ranges"]),
                        validity=d["validity"])


_ABOUT = ("GluonCV's published ImageNet runs (dmlc/web-data, gluoncv/logs/classification/"
          "imagenet/), condensed by tools/condense_published_logs.py; read with "
          "gluon_tricks.published.load(). lr: [epoch, first batch, [lr every lr_every "
          "batches]]; epochs: [" + ", ".join(_EPOCH_FIELDS) + "], top1/top5 = validation "
          "accuracy in percent (100 * (1 - logged error)); validity: 'measured', or why the "
          "validation lines are not a measurement (never an accuracy of the authors').")


def write(runs, path=DATA_FILE):
    """Write runs to ``path`` as JSON, one run per line."""
    lines = [json.dumps(_to_json(r), separators=(",", ":")) for r in runs]
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"about":' + json.dumps(_ABOUT) + ',\n"runs":[\n' + ",\n".join(lines) +
                "\n]}\n")


@functools.lru_cache(maxsize=4)
def load(path=DATA_FILE):
    """The published runs in ``path`` (default: the committed data file), {name:
    PublishedRun} in file order."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return {d["name"]: _from_json(d) for d in data["runs"]}
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}; rebuild it with "
                        "tools/condense_published_logs.py") from None
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a published-runs file ({e}); rebuild it with "
                        "tools/condense_published_logs.py") from None


def run(name, path=DATA_FILE):
    """The published run ``name`` (e.g. ``"resnet50_v1d-mixup"``) from ``path``."""
    runs = load(path)
    if name not in runs:
        raise UserError(f"no published run {name!r} in {path}; known: {', '.join(runs)}")
    return runs[name]
