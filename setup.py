"""gluon-tricks: "Bag of Tricks for Image Classification with CNNs" on MXNet/Gluon."""
import os

from setuptools import find_packages, setup

# numpy is pinned below 1.24 because MXNet 1.9.1 still uses np.bool, np.int and
# np.float, which numpy 1.24 removed: `import mxnet` works, then NDArray/numpy
# interop and the RecordIO iterators fail at run time with AttributeError.
#
# MXNet ships one wheel per CUDA version under different distribution names that
# all install the same `mxnet` package, so two of them in one environment
# overwrite each other. The CPU wheel is the default; on a GPU machine set
# GLUON_TRICKS_CUDA=cu112 (or cu117) so that it is replaced by the CUDA wheel,
# and ask for the matching extra: GLUON_TRICKS_CUDA=cu112 pip install ".[cu112]"
# (a system CUDA 11.2 and cuDNN 8), or, with nothing but the NVIDIA driver,
# GLUON_TRICKS_CUDA=cu117 pip install ".[gpu]" (`make gpu-install`, docs/gpu.md).
CUDA = os.environ.get("GLUON_TRICKS_CUDA", "").strip()
if CUDA not in ("", "cu112", "cu117"):
    raise SystemExit(f"GLUON_TRICKS_CUDA={CUDA!r}: expected cu112, cu117 or unset (CPU)")
MXNET = f"mxnet-{CUDA}==1.9.1" if CUDA else "mxnet==1.9.1"

# NVIDIA's pip wheels of every CUDA library mxnet-cu117's libmxnet.so needs: the CUDA 11.8
# releases, under the sonames it was linked against (libcudart.so.11.0, libcublas.so.11, ...);
# libcuda.so.1 comes with the driver. gluon_tricks/gpu/cuda_libs.py makes them loadable
# before mxnet is imported. cuDNN is pinned: unpinned, pip picks cuDNN 9 (no libcudnn.so.8).
CUDA_WHEELS = [
    "nvidia-cuda-runtime-cu11==11.8.89",
    "nvidia-cublas-cu11==11.11.3.6",
    "nvidia-cudnn-cu11==8.9.6.50",
    "nvidia-cufft-cu11==10.9.0.58",
    "nvidia-curand-cu11==10.3.0.86",
    "nvidia-cusolver-cu11==11.4.1.48",
    "nvidia-cusparse-cu11==11.7.5.86",
    "nvidia-nccl-cu11==2.21.5",
    "nvidia-cuda-nvrtc-cu11==11.8.89",
    "nvidia-nvtx-cu11==11.8.86",
]

setup(
    name="gluon-tricks",
    version="0.1.0",
    description="A faithful MXNet/Gluon reproduction of 'Bag of Tricks for Image "
                "Classification with Convolutional Neural Networks' (He et al., CVPR 2019)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["gluon_tricks", "gluon_tricks.*"]),
    package_data={"gluon_tricks": ["published_runs.json"]},
    python_requires=">=3.9",
    install_requires=[
        MXNET,
        "numpy<1.24",
        "gluoncv==0.10.5.post0",
        "matplotlib",
        "pyyaml",
        "tqdm",
    ],
    extras_require={
        "cu112": ["mxnet-cu112==1.9.1"],
        "cu117": ["mxnet-cu117==1.9.1"],
        "gpu": ["mxnet-cu117==1.9.1"] + CUDA_WHEELS,
        "demo": ["scikit-learn"],
        # tools/imagenet_val_labels.py reads the ImageNet devkit's meta.mat
        "imagenet": ["scipy"],
        # then onnxruntime 1.15.1 and protobuf 4.21.12 without their pins: `make onnx`
        "onnx": ["onnx==1.13.1"],
        # pytest-xdist 3.8 groups tests (--dist loadgroup) through a node id that pytest 9
        # no longer reads: make test's grouping needs pytest 8
        "test": ["pytest>=8,<9", "pytest-xdist>=3.6", "scikit-learn", "scipy"],
    },
)
