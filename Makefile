# `make demo` and `make test` work on a fresh machine with Python >= 3.9 and make:
# each creates .venv, installs what it needs once (stamp files), then runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# MXNet uses a single OpenMP thread on 2 vCPUs unless told otherwise (SPEC §8).
NPROC  := $(shell nproc 2>/dev/null || echo 2)
export OMP_NUM_THREADS ?= $(NPROC)

.PHONY: demo test install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install "pip<25" wheel "setuptools<70"

$(VENV)/.installed: setup.py | $(PY)
	$(PIP) install -e ".[test,demo]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) tools/model_table.py

test: install
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) build *.egg-info
