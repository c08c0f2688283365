# `make demo` and `make test` work on a fresh machine with Python >= 3.9 and make:
# each creates .venv, installs what it needs once (stamp files), then runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# MXNet uses a single OpenMP thread on 2 vCPUs unless told otherwise (docs/notes.md §4).
NPROC  := $(shell nproc 2>/dev/null || echo 2)
export OMP_NUM_THREADS ?= $(NPROC)
export MPLBACKEND ?= Agg
DEMO_DATA := data/demo
DEMO_RUN  := runs/demo

.PHONY: demo test test-slow install horovod onnx dali figures ablation transfer clean gpu-install gpu-libs-check

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install "pip<25" wheel "setuptools<70"

$(VENV)/.installed: setup.py pyproject.toml | $(PY)
	$(PIP) install -e ".[test,demo]"
	touch $@

# Horovod compiles against the installed MXNet (about 2 minutes on 2 cores; pip caches
# the wheel), with Gloo so that no MPI is needed, and without CUDA: it cannot reduce GPU
# arrays, and a Horovod run with --gpus refuses it. GPU Horovod: docs/distributed.md.
$(VENV)/.horovod: $(VENV)/.installed
	$(PIP) install cloudpickle psutil pyyaml packaging
	HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
	HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	$(PIP) install --no-build-isolation horovod==0.28.1
	touch $@

# ONNX export (tools/export_onnx.py): onnx 1.13.1 is the newest whose opsets
# onnxruntime 1.15.1 accepts from MXNet's exporter. That onnxruntime wheel asks for
# numpy >= 1.24, which MXNet 1.9.1 cannot use, and runs with numpy 1.23; onnx 1.13.1 asks
# for protobuf < 4, whose pure-Python parser took 60 s over a ResNet-50 (protobuf 4.21's
# takes 1 s, and onnx 1.13.1 works with it). Both are installed without those pins.
$(VENV)/.onnx: $(VENV)/.installed
	$(PIP) install -e ".[onnx]" coloredlogs flatbuffers sympy packaging
	$(PIP) install --no-deps onnxruntime==1.15.1 protobuf==4.21.12
	$(PY) -c "import numpy, onnx, onnxruntime; assert numpy.__version__ < '1.24'"
	touch $@

# NVIDIA DALI for data.backend: dali (docs/gpu.md): 1.35.0 is the newest release PyPI serves as
# a real wheel with the MXNet plugin (later ones are placeholders that download from NVIDIA's
# own index); 302 MB. Its CUDA 12 build opens nvJPEG (libnvjpeg.so.12) at run time from
# site-packages/nvidia/nvjpeg/lib and declares no dependency on it: the wheel of the CUDA it
# was built with (12.3, nvidia.dali.__cuda_version__) goes with it, 3.5 MB, CPU hosts too.
# Its CPU mode runs the tests here; its GPU path has never run.
$(VENV)/.dali: $(VENV)/.installed
	$(PIP) install nvidia-dali-cuda120==1.35.0 nvidia-nvjpeg-cu12==12.3.0.81
	$(PY) -c "import nvidia.dali.plugin.mxnet, numpy; assert numpy.__version__ < '1.24'"
	touch $@

install: $(VENV)/.installed
horovod: $(VENV)/.horovod
onnx: $(VENV)/.onnx
dali: $(VENV)/.dali

# GPU hosts with only the NVIDIA driver (docs/gpu.md): mxnet-cu117 in place of the CPU wheel,
# with NVIDIA's pip wheels of the CUDA libraries (about 2.4 GB). The CPU wheel goes first:
# both install the same `mxnet` files. The stamp is renewed so that `make test` does not put
# the CPU wheel back (until setup.py changes).
gpu-install: | $(PY)
	$(PIP) uninstall -y mxnet
	GLUON_TRICKS_CUDA=cu117 $(PIP) install -e ".[gpu,test,demo]"
	touch $(VENV)/.installed

# Opt-in, not in `make test`: the same GPU set in its own venv, then tests/gpu/libs_check.py
# proves on a host without a GPU that every library libmxnet.so needs resolves and that
# `import mxnet` works with a stand-in libcuda.so.1 (needs gcc).
GPU_VENV := .venv-gpu
GPU_PIP  := $(GPU_VENV)/bin/python -m pip --disable-pip-version-check -q
gpu-libs-check:
	test -x $(GPU_VENV)/bin/python || $(PYTHON) -m venv $(GPU_VENV)
	$(GPU_PIP) install "pip<25" wheel "setuptools<70"
	GLUON_TRICKS_CUDA=cu117 $(GPU_PIP) install -e ".[gpu]"
	$(GPU_VENV)/bin/python tests/gpu/libs_check.py

$(DEMO_DATA)/train.rec: | $(VENV)/.installed
	$(PY) tools/make_demo_data.py $(DEMO_DATA)

demo: install $(DEMO_DATA)/train.rec
	$(PY) recipes/train_imagenet.py --recipe recipes/demo.yaml \
	    --rec-train $(DEMO_DATA)/train.rec --rec-val $(DEMO_DATA)/val.rec \
	    --out $(DEMO_RUN) --force

# Tables 8 and 9 in miniature (docs/results/transfer.md): Faster-RCNN and FCN on the digit
# scenes from the demo's digits-trained ResNet-18-D, about 4 minutes on 2 cores
SCENES := data/scenes
$(SCENES)/voc/VOC2007/ImageSets/Main/test.txt: | $(VENV)/.installed
	$(PY) tools/make_digit_scenes.py $(SCENES) --size 96 --scale 32 56 --max-digits 2 \
	    --stroke 0.05 --force

transfer: demo $(SCENES)/voc/VOC2007/ImageSets/Main/test.txt
	$(PY) tools/transfer.py --recipe recipes/transfer/digits_detection.yaml \
	    --backbone $(DEMO_RUN) --data $(SCENES)/voc --out runs/digits_detection --force
	$(PY) tools/transfer.py --recipe recipes/transfer/digits_segmentation.yaml \
	    --backbone $(DEMO_RUN) --data $(SCENES)/ade --out runs/digits_segmentation --force
	$(PY) tools/results_table.py runs/digits_detection runs/digits_segmentation

# The suite on pytest-xdist workers, one per core up to 4, each with one OpenMP thread: most
# tests start processes or run Python between small kernels, which one core each does best.
# Tests that share a trained run or a module's fixture stay on one worker (tests/conftest.py).
TEST_WORKERS ?= $(shell n=$(NPROC); [ $$n -gt 4 ] && n=4; echo $$n)
test: install horovod onnx dali
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadgroup \
	    --durations=15 tests

# What `make test` leaves out: the Tables 8 and 9 miniatures (make demo's run as the backbone,
# then Faster-RCNN and FCN from it and from a random one) and fine-tuning against training
# from scratch (tests/train/test_finetune.py), about 16 minutes on 2 cores.
test-slow: install
	$(PY) -m pytest -q -m slow tests

# The committed figures and tables under docs/results are redrawn only by these targets
# (the tools themselves write under runs/ unless told otherwise).
figures: install
	$(PY) tools/plot_lr.py --out docs/results/fig3a_lr

ablation: install
	$(PY) tools/ablate.py --data $(DEMO_DATA) --out docs/results/ablation

clean:
	rm -rf $(VENV) $(GPU_VENV) build *.egg-info
