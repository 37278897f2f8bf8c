# 100 Days of Mechanistic Learning: every task the README mentions.
#
#   make test      set up .venv and run every test (package, pages, site config, render if Quarto is here)
#   make preview   set up .venv and open the live-reloading site (needs Quarto)
#   make site      set up .venv and render the whole site into _site/ (needs Quarto)
#   make day       scaffold the next day page (make day N=4 SLUG=tensor-recipes for a given one)
#   make bench     run the benchmarks and write benchmarks/results/*.json for the site
#
# requirements.txt is the one list of pinned versions; environment.yml and the GitHub
# workflows read the same file.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# One BLAS/OpenMP thread per process: tests and pages run two at a time on two cores, and
# multi-threaded BLAS then stalls small matrix products by orders of magnitude.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
# Quarto runs pages and pre/post-render scripts with this Python.
export QUARTO_PYTHON := $(abspath $(PY))
export PATH := $(abspath $(BIN)):$(PATH)
PYTEST_ARGS ?= -n 2

.PHONY: setup test preview site day bench quarto reference clean

# PyPI's Linux wheel of torch is the multi-GB CUDA build; PyTorch's CPU index has the CPU build of the
# same release. Install the pinned torch from there first (if that index cannot be reached, pip says
# so and takes the pinned release from PyPI), then everything else.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --retries 1 --extra-index-url $(TORCH_INDEX) "$$(grep -E '^torch==' requirements.txt)"
	$(PY) -m pip install -r requirements.txt -e .
	touch $@

# The browser libraries the site serves itself (KaTeX), pinned in package-lock.json.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund

setup: $(BIN)/.installed node_modules/.package-lock.json

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Quarto is not a Python package, but its PyPI wrapper `quarto-cli` (pinned in
# requirements-quarto.txt) installs the binary into the venv on a machine that can reach its
# download host. Where it cannot, say how to get Quarto instead of failing obscurely.
quarto: setup
	@command -v quarto >/dev/null 2>&1 || $(PY) -m pip install -r requirements-quarto.txt || { \
	  echo ""; \
	  echo "Quarto is not installed and 'pip install quarto-cli' could not fetch it."; \
	  echo "Install Quarto $$(sed -n 's/^quarto-cli==//p' requirements-quarto.txt) from https://quarto.org/docs/get-started/"; \
	  echo "(or run 'pip install quarto-cli' on a machine with internet access), then re-run this command."; \
	  exit 1; }
	@quarto --version

reference: setup
	cd $(CURDIR) && $(BIN)/quartodoc build

preview: quarto reference
	$(PY) scripts/vendor_assets.py _site
	quarto preview

site: quarto reference
	quarto render

day: setup
	$(PY) scripts/new_day.py $(N) $(if $(SLUG),--slug $(SLUG))

bench: setup
	cd benchmarks && ../$(PY) run.py

clean:
	rm -rf _site .quarto reference reports .pytest_cache .hypothesis
