"""A miniature of the paper's Table 6 on real data: a ladder of recipes (each adding one
refinement to the row above), trained over several seeds, summarised as mean ± std and as
Figure 3(b)-style curves (validation top-1 per epoch, mean over seeds).

The runs are trainings of ``recipes/train_imagenet.py`` in subprocesses (on CPU the CLI
selects MXNet's NaiveEngine, which makes runs bit-reproducible), one run folder each,
``RUNS/<row>_e<epochs>_s<seed>``; a finished folder is skipped and an unfinished one resumed,
so an interrupted ablation continues where it stopped. A row whose recipe distills gets
``--set teacher=<teacher run>``; its teacher (the recipe's ``teacher_recipe``, e.g. the
teacher trained with mixup for the distill-with-mixup row, as the paper does) is trained
first (one seed).
"""
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..paper import PAPER
from ..run.folder import RunFolder, RunFolderError
from ..run.recipe import config_diff
from ..train.config import from_saved, resolve
from .runs import RunRecord, load_run
from ..markdown import markdown_table

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAIN_SCRIPT = os.path.join(ROOT, "recipes", "train_imagenet.py")
RECIPES_DIR = os.path.join(ROOT, "recipes")  # what a recipe's teacher_recipe is relative to
LADDER_DIR = os.path.join(RECIPES_DIR, "ablation")
# Table 6's ResNet-50-D rows, in the order each adds to the one above (mixup on top of label
# smoothing, distillation on top of mixup); the recipe files carry the same names.
LADDER = ("efficient", "cosine", "label_smoothing", "mixup", "distill_mixup")
DEFAULT_RECIPES = tuple(os.path.join(LADDER_DIR, f"{name}.yaml") for name in LADDER)
DEFAULT_TEACHER = os.path.join(LADDER_DIR, "teacher.yaml")
PAPER_NET = "resnet50_v1d"


class AblationError(UserError):
    """A recipe, run folder or training of the ablation that cannot go on; one line."""


@dataclass
class RunSpec:
    """One training: row name, recipe file, seed, run folder, and the ``--set`` overrides
    (key, value) beyond the recipe (seed, epochs, teacher); ``teacher``: it trains a
    distillation teacher (not a row of the table)."""
    row: str
    recipe: str
    seed: int
    out: str
    overrides: list = field(default_factory=list)
    teacher: bool = False

    def config(self):
        """The resolved TrainConfig this run trains with (ConfigError if it does not resolve)."""
        return resolve(self.recipe, self.overrides)


def row_name(recipe):
    """A row is named by its recipe file: recipes/ablation/cosine.yaml -> "cosine"."""
    return os.path.splitext(os.path.basename(recipe))[0]


def plan(recipes, seeds, epochs, runs_dir, teacher_recipe=DEFAULT_TEACHER, teacher_seed=0,
         overrides=()):
    """The runs of the ablation, teachers first: list of :class:`RunSpec`.

    recipes : recipe files, one row each (their names must differ). seeds : ints.
    epochs : epochs of every run, or None for each recipe's own. overrides : (key, value)
    pairs set on every run, teachers included. A distilling row's teacher is trained from
    its ``teacher_recipe`` (relative to recipes/), or from ``teacher_recipe`` here if the
    row names none; each teacher recipe is trained once (same ``epochs``, seed
    ``teacher_seed``), named by its file, and the rows get ``teacher=<its run folder>`` and
    must name its model as ``teacher_model``.
    Raises AblationError/ConfigError (one line) for recipes that do not resolve or fit.
    """
    names = [row_name(r) for r in recipes]
    if len(set(names)) != len(names):
        raise AblationError(f"two recipes share a name ({', '.join(names)}); rows are named "
                            "by their file names")
    base = list(overrides) + ([("epochs", epochs)] if epochs is not None else [])
    runs_dir = os.path.abspath(runs_dir)

    def spec_of(name, recipe, seed):
        if not os.path.isfile(recipe):
            raise AblationError(f"{recipe}: recipe not found")
        spec = RunSpec(name, recipe, seed, "", base + [("seed", seed)])
        spec.out = os.path.join(runs_dir, f"{name}_e{spec.config().epochs}_s{seed}")
        return spec

    teachers = {}  # recipe path -> RunSpec
    specs = []
    for recipe, name in zip(recipes, names):
        for seed in seeds:
            spec = spec_of(name, recipe, seed)
            cfg = spec.config()
            if cfg.distill:
                wanted = os.path.normpath(os.path.join(RECIPES_DIR, cfg.teacher_recipe)
                                          if cfg.teacher_recipe else teacher_recipe)
                if wanted not in teachers:
                    teacher_name = row_name(wanted)
                    if teacher_name in names:
                        raise AblationError(f"{wanted}: a teacher recipe named like the row "
                                            f"{teacher_name}; rename one of them")
                    teachers[wanted] = spec_of(teacher_name, wanted, teacher_seed)
                    teachers[wanted].teacher = True
                teacher = teachers[wanted]
                teacher_model = teacher.config().model
                if cfg.teacher_model != teacher_model:
                    raise AblationError(f"{recipe}: teacher_model {cfg.teacher_model} but the "
                                        f"teacher recipe {wanted} trains {teacher_model}")
                spec.overrides.append(("teacher", teacher.out))
            specs.append(spec)
    return list(teachers.values()) + specs


def state(spec):
    """"done" (every planned epoch logged and best.params written), "partial" (a run folder
    of this configuration that stopped early: resume it) or "new". A folder trained with
    another configuration is an AblationError (retrain with --force, or another --out)."""
    folder = RunFolder(spec.out)
    if not os.path.exists(folder.config_path):
        return "new"
    planned = spec.config().to_dict()
    differ = config_diff(planned, from_saved(folder.read_config(),
                                             folder.config_path).to_dict())
    if differ:
        raise AblationError(f"{spec.out}: trained with another configuration ({', '.join(differ)}"
                            " differ); pass --force to retrain it, or another --out")
    try:
        last = load_run(spec.out).final["epoch"]
    except RunFolderError:
        return "partial"
    done = last >= planned["epochs"] and os.path.isfile(folder.best_params)
    return "done" if done else "partial"


def train_argv(spec, rec_train, rec_val, mode):
    """The train_imagenet.py command line of ``spec``; mode "new", "partial" (--resume) or
    "force" (replace what the folder holds)."""
    argv = [sys.executable, TRAIN_SCRIPT, "--recipe", spec.recipe, "--rec-train", rec_train,
            "--rec-val", rec_val, "--out", spec.out]
    for key, value in spec.overrides:
        # JSON is YAML, which is how the trainer parses --set values (None -> null, lists)
        argv += ["--set", f"{key}={json.dumps(value)}"]
    if mode == "partial":
        argv.append("--resume")
    elif mode == "force":
        argv.append("--force")
    return argv


def launch_training(spec, rec_train, rec_val, mode):
    """Run one training (:func:`train_argv`) in a subprocess; its output goes to
    RUN/ablate.out. Returns the wall time in seconds. AblationError (one line, naming that
    file) if it fails."""
    os.makedirs(spec.out, exist_ok=True)
    output = os.path.join(spec.out, "ablate.out")
    tic = time.time()
    with open(output, "a") as f:
        done = subprocess.run(train_argv(spec, rec_train, rec_val, mode), stdout=f,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        with open(output) as f:
            lines = [line.strip() for line in f if line.strip()]
        raise AblationError(f"{spec.row} seed {spec.seed}: training failed (exit "
                            f"{done.returncode}: {lines[-1][:200] if lines else 'no output'}); "
                            f"see {output}")
    return time.time() - tic


@dataclass
class RowResult:
    """One row over its seeds. Accuracies in percent; ``runs`` the loaded run folders."""
    name: str
    recipe: str
    runs: list

    def _values(self, key, which="final"):
        return np.array([100 * getattr(r, which)[key] for r in self.runs])

    @property
    def top1(self):
        """Final-epoch validation top-1 of each seed (the number the paper reports)."""
        return self._values("val_top1")

    @property
    def top5(self):
        return self._values("val_top5")

    @property
    def best_top1(self):
        return self._values("val_top1", "best")

    @property
    def train_minutes(self):
        """Mean over seeds of the summed epoch times (training + validation) of a run."""
        return float(np.mean([sum(e.get("time_s") or 0 for e in r.epochs) / 60
                              for r in self.runs]))

    def curve(self):
        """(epochs, mean val top-1 in percent, std) over the seeds, for the epochs all have."""
        series = [dict(zip(*r.series("val_top1"))) for r in self.runs]
        epochs = sorted(set.intersection(*(set(s) for s in series)))
        values = 100 * np.array([[s[e] for e in epochs] for s in series])
        return epochs, values.mean(axis=0), _std(values)

    @property
    def paper(self):
        """The paper's ImageNet result of this row for ResNet-50-D, or None."""
        return PAPER.get(f"table6/{PAPER_NET}/{self.name}")


def _std(values):
    """Sample standard deviation (ddof 1) over the seeds, axis 0; NaN for a single seed."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return np.full(values.shape[1:], np.nan)
    return values.std(axis=0, ddof=1)


def collect(specs):
    """The rows of the finished ``specs`` (teachers left out), in the order of ``specs``."""
    rows = {}
    for spec in specs:
        if spec.teacher:
            continue
        rows.setdefault(spec.row, RowResult(spec.row, spec.recipe, []))
        rows[spec.row].runs.append(load_run(spec.out))
    return list(rows.values())


def mean_std(values):
    """"mean ± std" of percentages (sample std over seeds, "n/a" for one seed)."""
    std = _std(values)
    return f"{np.mean(values):.2f} ± " + ("n/a" if np.isnan(std) else f"{std:.2f}")


COLUMNS = ("row", "recipe", "seeds", "top-1 (%)", "top-5 (%)", "Δ top-1", "best top-1 (%)",
           "min/run", "paper R50-D top-1", "paper Δ")


def markdown(rows):
    """The rows as a Markdown table (columns :data:`COLUMNS`); Δ is the change of the mean
    final top-1 from the row above, "paper" the ResNet-50-D ImageNet numbers of Table 6."""
    lines = []
    previous = previous_paper = None
    for r in rows:
        mean = float(np.mean(r.top1))
        paper = r.paper.top1 if r.paper else None
        delta = "-" if previous is None else f"{mean - previous:+.2f}"
        paper_delta = ("-" if paper is None or previous_paper is None
                       else f"{paper - previous_paper:+.2f}")
        lines.append([
            r.name, os.path.relpath(r.recipe, ROOT), len(r.runs), mean_std(r.top1),
            mean_std(r.top5), delta, mean_std(r.best_top1), f"{r.train_minutes:.1f}",
            "-" if paper is None else f"{paper:.2f}", paper_delta])
        previous, previous_paper = mean, paper
    return markdown_table(COLUMNS, lines)


def machine():
    """One line on where the runs ran: cores, OpenMP threads, CPU, Python and MXNet."""
    import mxnet as mx
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{os.cpu_count()} cores (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
            f"), {cpu}, {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, mxnet {mx.__version__}")


def report(rows, specs, command, seeds, epochs, data, wall_s):
    """table.md: how the ablation was run (command, seeds, epochs, data, teacher, machine,
    date), then :func:`markdown`, then how to read it."""
    teachers = [s for s in specs if s.teacher]
    epochs_text = "each recipe's own" if epochs is None else str(epochs)
    lines = [
        "# Miniature Table 6: ResNet-18-D on the digits demo set, CPU", "",
        f"Command: `{command}`  ",
        f"Seeds: {', '.join(map(str, seeds))}; epochs per run: {epochs_text}; data: {data}  ",
    ]
    for teacher in teachers:
        t = load_run(teacher.out)
        users = sorted({s.row for s in specs if ("teacher", teacher.out) in s.overrides})
        lines.append(f"Teacher of {', '.join(users)}: {os.path.relpath(teacher.recipe, ROOT)} "
                     f"({t.config.get('model')}, seed {teacher.seed}), final val top-1 "
                     f"{100 * t.final['val_top1']:.2f}%  ")
    run_s = sum(e.get("time_s") or 0 for spec in specs for e in load_run(spec.out).epochs)
    lines += [f"Machine: {machine()}  ",
              f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}; epoch times of all {len(specs)} "
              f"runs, summed: {run_s / 60:.1f} min; wall time of this invocation "
              f"{wall_s / 60:.1f} min (finished runs are not retrained)", "",
              markdown(rows),
              "Top-1/top-5: validation accuracy after the last epoch (as the paper reports), "
              "mean ± sample standard deviation over the seeds; best top-1: the best epoch's. "
              "Δ top-1: change of the mean from the row above. min/run: summed epoch times "
              "(training + validation) of one run, from its log. The paper columns are "
              "ImageNet ResNet-50-D (Table 6), for the direction of each step only.", ""]
    return "\n".join(lines)


def curve_runs(rows):
    """One :class:`RunRecord` per row whose epoch records hold the mean val top-1 over the
    seeds, for :func:`gluon_tricks.report.figures.plot_val_top1`."""
    out = []
    for r in rows:
        epochs, mean, _ = r.curve()
        seeds = f"{len(r.runs)} seed" + ("s" if len(r.runs) > 1 else "")
        epoch_records = [dict(epoch=e, val_top1=m / 100) for e, m in zip(epochs, mean)]
        out.append(RunRecord(path=r.name, config={"description": f"{r.name} ({seeds})"},
                             epochs=epoch_records))
    return out
