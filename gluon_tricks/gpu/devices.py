"""``--gpus``: the GPU ids a command line lists, checked against the GPUs MXNet sees, as
MXNet contexts. Every command that runs on GPUs (the trainers, validate, predict, the GPU
self-check) reads the flag here."""
import mxnet as mx

from ..errors import RunError
from .preflight import preflight


def parse_gpus(text):
    """The GPU ids of ``--gpus TEXT`` (comma-separated; empty: none, the CPU); RunError (one
    line) for ids that are not integers."""
    try:
        return [int(g) for g in (text or "").split(",") if g.strip()]
    except ValueError:
        raise RunError(f"--gpus {text!r}: expected comma-separated integers") from None


def check_gpu(gpus, gpu, visible):
    """RunError (one line) unless GPU id ``gpu`` of --gpus ``gpus`` is one of the ``visible``
    GPUs MXNet sees."""
    listed = ",".join(map(str, gpus))
    if not visible:
        raise RunError(f"--gpus {listed}: MXNet sees no GPU here (a CPU build of MXNet, or no "
                       "CUDA device); leave --gpus out to run on the CPU")
    if not 0 <= gpu < visible:
        raise RunError(f"--gpus {listed}: GPU {gpu}, but MXNet sees {visible} (ids 0.."
                       f"{visible - 1})")


def contexts_of(gpus, dali=False):
    """The devices of one process: every GPU id of ``gpus`` (ints), checked, else the CPU.
    GPUs the installed MXNet cannot drive (an H200 under the pip wheels), and drivers too old
    for DALI (``dali``: data.backend dali), are refused in one line before anything runs on
    them (:func:`~gluon_tricks.gpu.preflight.preflight`)."""
    if gpus:
        preflight(gpus, dali=dali)
    visible = mx.context.num_gpus() if gpus else 0
    for g in gpus:
        check_gpu(gpus, g, visible)
    return [mx.gpu(g) for g in gpus] or [mx.cpu()]


def gpu_contexts(text):
    """The devices of ``--gpus TEXT`` for a command that runs in one process; RunError (one
    line) for ids that are not integers or not here."""
    return contexts_of(parse_gpus(text))
