"""Where an export may write: a new file, or one the user names with ``--force``; never a
data set (``.rec``/``.idx``) or a file inside a run folder (its weights and records are the
trainer's), whatever the flags."""
import os

from ..locks import output_lock
from ..run.folder import RunFolder

_DATA_SET = (".rec", ".idx")


def output_of_export(path, force, error):
    """The lock (:func:`gluon_tricks.locks.output_lock`) of the export's output ``path``,
    after checking that it may be written: ``error`` (one line naming ``path``) for a folder,
    a .rec/.idx file, a path inside a run folder, or an existing file without ``force``."""
    if os.path.isdir(path) or path.endswith(os.sep):
        raise error(f"{path}: a folder; name the file to write")
    if path.lower().endswith(_DATA_SET):
        raise error(f"{path}: a data set's name (.rec/.idx); name another file")
    run = _run_folder_holding(path)
    if run is not None:
        raise error(f"{path}: inside the run folder {run}; write exports outside it")
    if os.path.lexists(path) and not force:
        raise error(f"{path} already exists; pass --force to overwrite it")
    return output_lock(path, error)


def _run_folder_holding(path):
    """The run folder that ``path`` (symbolic links resolved) would be written into, directly
    or in its checkpoints/, or None."""
    folder = os.path.dirname(os.path.realpath(path))
    candidates = [folder]
    if os.path.basename(folder) == RunFolder.CHECKPOINTS:
        candidates.append(os.path.dirname(folder))
    return next((c for c in candidates if RunFolder(c).holds_run()), None)
