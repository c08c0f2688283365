"""Launching small Horovod jobs (CPU ranks, Gloo) from the tests of this folder."""
import os
import shutil
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)


def horovodrun():
    """Path of the venv's (or PATH's) horovodrun, or None."""
    return shutil.which("horovodrun", path=BIN + os.pathsep + os.environ.get("PATH", ""))


def horovod_mxnet_available():
    try:
        import horovod.mxnet  # noqa: F401
    except Exception:  # ImportError, or horovod built without MXNet
        return False
    return horovodrun() is not None


def rank_env(**extra):
    """One OpenMP thread per rank (two ranks share two cores), this checkout importable,
    the venv's horovodrun and python first on PATH."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(extra)
    return env


def horovodrun_command(ranks, *args):
    """argv of `horovodrun -np ranks --gloo python *args` on this machine."""
    return [horovodrun(), "-np", str(ranks), "-H", f"localhost:{ranks}", "--gloo",
            sys.executable, *args]
