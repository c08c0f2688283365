"""gluon-tricks: the paper "Bag of Tricks for Image Classification" on MXNet/Gluon.

Layers, top to bottom (docs/architecture.md; each imports only those below it): ``cli``;
``report``; ``infer``, ``export``; ``train``, ``transfer``; ``run``; ``models``, ``data``,
``gpu``; ``errors``, ``seeds``, ``paper``, ``published``, ``markdown``, ``locks``.
"""
from . import quick_start
from .gpu.cuda_libs import CudaLibraryError, prepare

__version__ = "0.1.0"

# The import-time actions of the package. A finder keeps `import mxnet` from importing
# scikit-learn, a third of its time (quick_start.py). And mxnet-cu117 finds NVIDIA's pip
# wheels of the CUDA libraries only once prepare() has loaded them (docs/gpu.md), and every
# module below imports mxnet. On the CPU wheel it reads libmxnet.so's dynamic section and
# does nothing. Without a library it needs, `import mxnet` fails later with the loader's
# OSError, which the command lines report in one line (errors.run_cli); importing the
# package itself, as the GPU tools do before mxnet, must not fail.
quick_start.install()
try:
    prepare()
except CudaLibraryError:
    pass
