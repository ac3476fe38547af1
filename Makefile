# The two commands of the README: `make run` and `make test`. Both create .venv and install what is
# pinned in requirements/lock.txt when needed (again only when the lock or the package metadata change).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MIRROR_DEFAULT := $(wildcard ../shared/datasets/sib-200)
export PRAVAH_DATA_MIRROR ?= $(if $(MIRROR_DEFAULT),$(abspath $(MIRROR_DEFAULT)),)

.PHONY: install run test lint bench notebooks clean

$(STAMP): requirements/lock.txt setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3 setuptools==80.9.0 wheel==0.45.1
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/pravah run text-classifier

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
	$(BIN)/python -m benchmarks.orchestration
	$(BIN)/python -m benchmarks.serving
	$(BIN)/python -m benchmarks.monitoring

notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet jupyterlab==4.6.6
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf .pravah
