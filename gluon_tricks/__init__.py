"""gluon-tricks: the paper "Bag of Tricks for Image Classification" on MXNet/Gluon.

Layers, top to bottom (docs/architecture.md; each imports only those below it): ``cli``;
``report``; ``infer``, ``export``; ``train``, ``transfer``; ``run``; ``models``, ``data``,
``gpu``; ``errors``, ``seeds``, ``paper``, ``published``, ``markdown``, ``locks``.
"""
import sys

from .gpu.cuda_libs import CudaLibraryError, prepare

__version__ = "0.1.0"

# The one import-time action of the package: mxnet-cu117 finds NVIDIA's pip wheels of the
# CUDA libraries only once prepare() has loaded them (docs/gpu.md), and every module below
# imports mxnet. On the CPU wheel it reads libmxnet.so's dynamic section and does nothing.
# Without a library it needs, `import mxnet` would fail with a loader traceback: one line,
# exit status 2, as every user error of the command lines.
try:
    prepare()
except CudaLibraryError as e:
    print(f"error: {e}", file=sys.stderr)
    raise SystemExit(2) from None
