"""gluon-tricks: the paper "Bag of Tricks for Image Classification" on MXNet/Gluon.

Layers, top to bottom (docs/architecture.md; each imports only those below it): ``cli``;
``report``; ``infer``, ``export``; ``train``, ``transfer``; ``run``; ``models``, ``data``,
``gpu``; ``errors``, ``seeds``, ``paper``, ``published``, ``markdown``, ``locks``.
"""
from .gpu.cuda_libs import CudaLibraryError, prepare

__version__ = "0.1.0"

# The one import-time action of the package: mxnet-cu117 finds NVIDIA's pip wheels of the
# CUDA libraries only once prepare() has loaded them (docs/gpu.md), and every module below
# imports mxnet. On the CPU wheel it reads libmxnet.so's dynamic section and does nothing.
# Without a library it needs, `import mxnet` fails later with the loader's OSError, which the
# command lines report in one line (errors.run_cli); importing the package itself, as the GPU
# tools do before mxnet, must not fail.
try:
    prepare()
except CudaLibraryError:
    pass
