"""The life of a run folder, the same for every trainer: open it (a new run, ``--force`` or
``--resume``, by the resume rules of the trainer's recipes), start it once every check has
passed, resume from the newest checkpoint that loads, and end each epoch (the best so far,
the log record, the checkpoint, the run a ``--force`` replaced). A trainer is a loop and a
configuration on top of it::

    with open_run(out, launch, cfg, RECIPES, best_key="best_top1") as run:  # the lock
        ...                                 # build the network (--init unless
        ...                                 # run.has_checkpoint), optimizer, loaders
        run.start(cfg)                      # config.yaml, command.json (a new run)
        # a resume loads its checkpoint, then writes config.yaml and command.json
        start = run.resume(net, trainer, contexts, cfg.epochs)[0] if launch.resume else 0
        for epoch in range(start, run.end(start, cfg.epochs)):
            ...                             # train, validate
            is_best = run.beats_best(value)
            if is_best:
                run.record_best(value, epoch + 1)
            run.end_epoch(epoch + 1, net, trainer, record, is_best, keep=cfg.keep_checkpoints)

One process owns a run folder: :func:`open_run` takes its lock (a second trainer, --force or
--resume on it is refused in one line naming the holder) and leaving the ``with`` block
releases it. In a data-parallel job every rank opens the run and loads the checkpoint; only
the root rank locks and writes (``dist.is_root``), and ``dist.barrier`` keeps the ranks in
step around the writes.
"""
import logging
import os
from dataclasses import dataclass
from typing import Optional

from ..errors import RunError
from .checkpoints import Checkpoints
from .epoch_log import EpochLog
from .folder import RunFolder, RunFolderError
from .optimizer_state import optimizer_state, restore_optimizer_state
from .parallel import SingleProcess
from .recipe import ConfigError

log = logging.getLogger("gluon_tricks")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run, its message the one line for the user: the epoch it stopped in
    and that ``--resume`` continues (from the last checkpoint)."""


class RunLog:
    """Lines for people (stdout and train.log) and records for programs (log.jsonl); only
    the root rank writes."""

    def __init__(self, folder, enabled):
        self.epoch_log, self.enabled = EpochLog(folder.log_path), enabled
        self.handler = None
        if enabled:
            self.handler = QuietFileHandler(folder.text_log_path)
            self.handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            log.addHandler(self.handler)

    def close(self):
        if self.handler is not None:
            log.removeHandler(self.handler)
            self.handler.close()

    def info(self, msg, *args):
        if self.enabled:
            log.info(msg, *args)

    def record(self, **fields):
        if self.enabled:
            self.epoch_log.append(fields)


class QuietFileHandler(logging.FileHandler):
    """train.log's handler. A line that cannot be written (disk full) is dropped without
    logging's traceback on stderr: the checkpoint that follows names the file in one line."""

    def handleError(self, record):
        pass


@dataclass(frozen=True)
class Launch:
    """How a call opens its run folder (the command line's choices): continue the run in it
    (``resume``), replace the run it holds (``force``), train at most ``stop_after`` epochs
    in this call (a job slot shorter than the run; a resume continues it exactly) and
    ``command`` (argv, data files, recipe) for command.json."""
    resume: bool = False
    force: bool = False
    stop_after: Optional[int] = None
    command: Optional[dict] = None


def open_run(out, launch, cfg, recipes, best_key="best", dist=None):
    """The :class:`RunSession` of the folder ``out`` for the configuration ``cfg``, its lock
    taken (root rank), after checking that it holds a run to resume (``launch.resume``: its
    config.yaml as the run wrote it, whose settings ``cfg`` may change only as ``recipes``
    allow) or none to overwrite (unless ``launch.force``). RunError (one line) otherwise.
    ``dist``: this process's place in a data-parallel job (``is_root``, ``barrier()``;
    default one process). Writes nothing but the lock (and the folder it is in); every rank
    returns once all have checked, so none sees the files the root rank writes next."""
    folder, dist = RunFolder(out), dist or SingleProcess()
    release = folder.lock() if dist.is_root else (lambda: None)
    try:
        changed = _checked_changes(folder, launch, cfg, recipes)
        dist.barrier()  # every rank has checked the folder before the root rank writes to it
    except BaseException:
        release()
        raise
    return RunSession(folder, launch, changed, best_key, dist, release)


def _checked_changes(folder, launch, cfg, recipes):
    """The settings a resume changes ({key: [old, new]}), after the checks of open_run."""
    out = folder.path
    folder.check_layout(launch.force)
    if launch.resume and not folder.holds_run():
        raise RunError(f"--resume: {out} holds no run to resume")
    if not launch.resume and folder.holds_run() and not launch.force:
        raise RunError(f"{out} already holds a run; pass --resume to continue it or --force "
                       "to replace it")
    if not launch.resume:
        return {}
    folder.check_config_untouched()
    _check_same_inputs(folder, launch.command)
    try:
        saved = recipes.from_saved(folder.read_config(), folder.config_path)
        return recipes.resume_changes(saved, cfg)
    except ConfigError as e:
        raise RunError(f"--resume {folder.path}: {e}") from None


def _check_same_inputs(folder, command):
    """RunError (one line, naming the flag) if a resume's ``command`` names other inputs
    (data files: every key but argv, recipe and changed) than command.json recorded: the
    run would go on on another data set under the same name."""
    saved = folder.read_command()
    for key, path in (command or {}).items():
        was = saved.get(key)
        if key in ("argv", "recipe", "changed") or was is None or was == path:
            continue
        if isinstance(was, str) and os.path.exists(was) and os.path.exists(path) \
                and os.path.samefile(was, path):
            continue
        raise RunError(f"--resume {folder.path}: --{key.replace('_', '-')} {path} is not "
                       f"the run's {was} (command.json); resume without "
                       f"--{key.replace('_', '-')}, or start a new run with another --out")


class RunSession:
    """A run folder opened by :func:`open_run`: ``folder``, its ``checkpoints``, its
    :class:`Launch`, the settings a resume ``changed`` ({key: [old, new]}), whether it
    resumes from a checkpoint (``has_checkpoint``: if not, it starts as the run first did,
    from ``--init`` or the backbone), the best value so far (``best``, logged as
    ``best_key``) and its epoch, and the run's :class:`RunLog` once started. A context
    manager: leaving it closes the log and releases the folder's lock (``release``)."""

    def __init__(self, folder, launch, changed, best_key, dist, release):
        self.folder, self.launch, self.changed = folder, launch, changed
        self.checkpoints = Checkpoints(folder)
        self.resumed = launch.resume
        self.has_checkpoint = launch.resume and bool(self.checkpoints.epochs())
        self.best_key, self.is_root, self.barrier = best_key, dist.is_root, dist.barrier
        self.best, self.best_epoch = -1.0, None
        self.done = 0  # the epochs checkpointed
        self.log = None
        self._config, self._release = None, release

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if self.log is not None:
            self.log.close()
        self._release()
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
            raise Interrupted(f"{self.folder.path}: interrupted in epoch {self.done + 1}; "
                              "--resume continues") from None

    def start(self, cfg):
        """Once every check has passed: set a replaced run aside (deleted after this run's
        first checkpoint), write config.yaml and command.json (the launch's command; for a
        resume, once :meth:`resume` has loaded its checkpoint), open the log and return it.
        Every rank calls it; the root rank writes."""
        self._config = cfg.to_dict()
        if self.is_root and not self.resumed:
            self.folder.set_aside()
            self._record_start()
        self.barrier()
        self.log = RunLog(self.folder, self.is_root)
        return self.log

    def _record_start(self):
        """config.yaml (a new run, or a resume that changed settings) and command.json."""
        folder, command = self.folder, self.launch.command
        if not self.resumed or self.changed:
            folder.write_config(self._config)
        if command is not None:
            folder.record_command(dict(command, changed=self.changed) if self.changed
                                  else command, self.resumed)

    def end(self, start, epochs):
        """The epoch this call stops after: ``epochs``, or fewer with ``stop_after``."""
        stop_after = self.launch.stop_after
        return epochs if stop_after is None else min(epochs, start + stop_after)

    def resume(self, net, trainer, contexts, epochs):
        """Load the network and optimizer state of the newest checkpoint that loads (newer
        unreadable ones are set aside, and said so), the best value so far, put back
        best.params after a kill in its write, drop the log records of epochs after the
        checkpoint (they will be redone). Returns (the epochs done, the checkpoint's record
        or None: a run killed before its first checkpoint starts again). RunError (one line)
        if ``epochs`` are fewer than those done, or if no checkpoint loads (a network that
        is not the one they hold; nothing is set aside)."""
        start, record, unreadable = load_newest_checkpoint(self.checkpoints, net, trainer,
                                                           contexts, self.log)
        if record is None and unreadable:
            epoch, reason = unreadable[0]
            raise RunError(f"--resume {self.folder.path}: none of its {len(unreadable)} "
                           f"checkpoints loads into the configured network (epoch {epoch}: "
                           f"{reason}); nothing was moved; start again with --force if they "
                           "are damaged")
        if record is not None:
            self.best = checked_best(record, self.best_key, self.log.epoch_log.record_of(start),
                                     self.checkpoints.path(start, "json"))
            self.best_epoch = record.get("best_epoch")
        self.done = start
        if epochs < start:
            raise RunError(f"--resume {self.folder.path}: epochs={epochs} but {start} are "
                           "done already")
        self.barrier()  # every rank has read the checkpoint before any file moves
        if self.is_root:
            self._record_start()
            finish_resume(self.checkpoints, start, record, unreadable, self.log)
        return start, record

    def beats_best(self, value):
        """Whether ``value`` beats the best so far (nothing is recorded: see
        :meth:`record_best`)."""
        return value > self.best

    def record_best(self, value, epoch):
        """``value``, reached after ``epoch`` epochs, is the best so far."""
        self.best, self.best_epoch = value, epoch

    def end_epoch(self, epoch, net, trainer, record, is_best, keep, extra=None):
        """Checkpoint the network and the optimizer state after ``epoch`` epochs with
        ``record`` (the epoch's, for log.jsonl), the best epoch and ``extra`` (what else a
        resume needs), keeping the last ``keep``, then log ``record`` (never a record without
        its checkpoint); drop a run that --force replaced. Root rank writes; every rank calls
        it."""
        if self.is_root:
            arrays, state = optimizer_state(trainer, net)
            self.checkpoints.save(epoch, net, arrays, dict(
                record, best_epoch=self.best_epoch, optimizer=state, log_record=record,
                **(extra or {})), is_best, keep=keep)
        self.done = epoch
        self.log.record(**record)
        if self.is_root:
            self.folder.drop_set_aside()
        self.barrier()


def load_newest_checkpoint(checkpoints, net, trainer, contexts, log):
    """Load the network and optimizer state of the newest of ``checkpoints``
    (:class:`~gluon_tricks.run.checkpoints.Checkpoints`) that loads, trying older ones after
    one that does not (said in ``log``). Returns (its epoch, its JSON record, (epoch,
    reason) of those that did not load, newest first); (0, None, ...) if none did."""
    unreadable = []
    for epoch in reversed(checkpoints.epochs()):
        try:
            record, arrays = checkpoints.load(epoch, net, contexts)
            restore_optimizer_state(trainer, net, arrays, record["optimizer"])
        except RunFolderError as e:
            reason = str(e)
        except (KeyError, ValueError, TypeError) as e:
            reason = (f"{checkpoints.path(epoch, 'optimizer')}: optimizer state does not "
                      f"fit: {e}")
        else:
            return epoch, record, unreadable
        log.info("checkpoint of epoch %d cannot be used (%s); trying the one before",
                 epoch, reason)
        unreadable.append((epoch, reason))
    return 0, None, unreadable


def checked_best(record, best_key, logged, path):
    """The best value so far of the checkpoint ``record`` (read from ``path``), once the
    epoch's record for the log (kept in it) and ``logged`` (log.jsonl's record of the epoch,
    or None) say the same: RunError (one line) otherwise, so that a hand edit of the
    checkpoint's best cannot keep every later epoch from becoming the best."""
    best = record.get(best_key, -1.0)
    for source, other in (("its log record", record.get("log_record")),
                          ("log.jsonl", logged)):
        if isinstance(other, dict) and best_key in other and other[best_key] != best:
            raise RunError(f"--resume: {path} says {best_key} {best} but {source} says "
                           f"{other[best_key]}; put back what the run wrote, or start again "
                           "with --force")
    if not isinstance(best, (int, float)):
        raise RunError(f"--resume: {path}: {best_key} {best!r} is not a number")
    return best


def finish_resume(checkpoints, epoch, record, unreadable, log):
    """After :func:`load_newest_checkpoint` (root rank, once every rank has loaded): set the
    ``unreadable`` checkpoints aside, put back best.params if a kill left a newer one, drop
    the log records of epochs after ``epoch`` (they will be redone) and log the checkpoint's
    record if a kill came between the two."""
    for bad, _ in unreadable:
        log.info("set aside the unreadable checkpoint of epoch %d in %s", bad,
                 checkpoints.set_aside(bad))
    if record is not None and checkpoints.repair_best(record):
        log.info("best.params was newer than the last checkpoint (a kill during its "
                 "write); put back that of epoch %d", record["best_epoch"])
    log.epoch_log.truncate_after(epoch)
    if record is not None and log.epoch_log.append_missing_epoch(epoch,
                                                                 record.get("log_record")):
        log.info("logged epoch %d from its checkpoint (a kill came before its log record)",
                 epoch)
    path = checkpoints.folder.path
    if record is None:
        log.info("no checkpoint in %s yet: starting it again from the beginning", path)
    else:
        log.info("resuming %s after epoch %d", path, epoch)


def recipe_mismatch(run, recipe, role):
    """A sentence if ``run`` is a run folder trained from another recipe than ``recipe``
    (relative to recipes/), else None; ``role`` names it ("teacher", "backbone"). Bare
    .params files and runs without command.json are not judged."""
    if not recipe or not run or not os.path.isdir(run):
        return None
    try:
        trained = RunFolder(run).read_command().get("recipe")
    except RunFolderError:
        return None
    if not trained:
        return None
    expected = "/recipes/" + recipe.replace(os.sep, "/")
    if os.path.abspath(trained).replace(os.sep, "/").endswith(expected):
        return None
    return f"the {role} {run} was trained from {trained}; this recipe's {role} is recipes/{recipe}"

