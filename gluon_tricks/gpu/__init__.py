"""GPUs: what the installed MXNet can drive and how it finds its CUDA libraries.

``fatbin``     the CUDA architectures compiled into libmxnet.so (its ELF ``.nv_fatbin``), and
               the ELF reader the other modules share (DT_NEEDED, DT_SONAME)
``cuda_libs``  makes NVIDIA's pip wheels of the CUDA libraries loadable before mxnet is
               imported (``prepare()``)
``preflight``  each GPU of this host (nvidia-smi or the driver) against those architectures
``devices``    the ``--gpus`` flag as MXNet contexts

Nothing here imports mxnet at import time except ``devices``: ``cuda_libs`` must run before
it, and ``preflight`` before any GPU run writes anything.
"""
