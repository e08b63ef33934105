# Two entry points (see README): `make train` and `make test`. Both set up .venv first.
#   make test       lint, then the whole suite (what CI runs; it prints the 25 slowest tests)
#                   in TEST_WORKERS pytest-xdist processes (2: the CI box's cores; a single
#                   process keeps about one core busy, so two halve the time);
#                   also installs the PyTorch extras of requirements-torch.txt so the VQ-GAN
#                   torch-equivalence test runs, and libtpu (requirements-aot.txt) so the TPU
#                   ahead-of-time compile test runs
#   make test-fast  the suite without tests marked slow (subprocesses, training runs): -m "not slow"
#   make lint       ruff check + ruff format --check (config in pyproject.toml; nothing rewritten;
#                   `.venv/bin/ruff format . && .venv/bin/ruff check --fix .` applies them)
#   make data-setup .venv-data: the pinned environment for preparing datasets
#                   (requirements-data.txt: apache-beam, OpenCV; docs/data.md)
# `make train` does not install torch or libtpu (only `make test` does).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_STAMP := $(VENV)/.installed-torch
TEST_WORKERS ?= 2
AOT_STAMP := $(VENV)/.installed-aot

.PHONY: setup test test-fast lint train clean data-setup

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version" 2>/dev/null || { echo "Need Python 3.11 (found: $(PYTHON)); run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

# --no-deps: taming-transformers declares torchvision and pytorch-lightning, which neither it
# nor the test needs (see the file's header); the file pins torch's own dependencies.
$(TORCH_STAMP): $(STAMP) requirements-torch.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-torch.txt
	touch $(TORCH_STAMP)

# libtpu: the TPU compiler for `python -m unified_io.aot` and tests/test_aot.py (no TPU needed).
$(AOT_STAMP): $(STAMP) requirements-aot.txt
	$(BIN)/pip install --quiet -r requirements-aot.txt
	touch $(AOT_STAMP)

test: setup $(TORCH_STAMP) $(AOT_STAMP) lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope --durations=25 tests

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" tests

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

train: setup
	$(BIN)/python -m unified_io.train --workdir=workdir/tiny

# apache-beam needs pillow<13 and protobuf<7: a venv of its own (requirements-data.txt).
.venv-data/.installed: requirements-data.txt
	$(PYTHON) -m venv .venv-data
	.venv-data/bin/pip install --quiet --upgrade pip
	.venv-data/bin/pip install --quiet -r requirements-data.txt
	.venv-data/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch .venv-data/.installed

data-setup: .venv-data/.installed

clean:
	rm -rf $(VENV) .venv-data workdir
