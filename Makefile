# The two commands of the README: `make run` and `make test`. Both create .venv and install what is
# pinned in requirements/lock.txt when needed (again only when the lock or the package metadata change).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MIRROR_DEFAULT := $(wildcard ../shared/datasets/sib-200)
export PRAVAH_DATA_MIRROR ?= $(if $(MIRROR_DEFAULT),$(abspath $(MIRROR_DEFAULT)),)

.PHONY: install browser run test lint bench notebooks clean monitoring-image

$(STAMP): requirements/lock.txt setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3 setuptools==80.9.0 wheel==0.45.1
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/pravah run text-classifier

# Debian's Chromium, in which tests/test_docs_pages.py loads /docs and /redoc (apt-get as root, else sudo)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	command -v chromium >/dev/null || $(SUDO) apt-get install -y -qq chromium >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
	$(BIN)/python -m benchmarks.orchestration
	$(BIN)/python -m benchmarks.serving
	$(BIN)/python -m benchmarks.monitoring
	$(BIN)/python -m benchmarks.tuning
	$(BIN)/python -m benchmarks.estimation
	$(BIN)/python -m benchmarks.shadow

# The monitoring image (pipelines/sagemaker/container/monitoring.Dockerfile), built from this folder and pushed
# to the environment's monitoring_image (by default ECR's pravah-monitoring in its account and region), where
# the Model Monitor schedules of `pravah schedule deploy` and `pravah template` find it. Needs Docker and AWS
# credentials: make monitoring-image ENVIRONMENT=prod
ENVIRONMENT ?= dev
monitoring-image: $(STAMP)
	image=$$($(BIN)/python -c 'import sys; from aws.environments import load_environment; \
	print(load_environment(sys.argv[1]).monitoring_image_uri)' $(ENVIRONMENT)) && registry=$${image%%/*} && \
	repository=$${image#*/} && repository=$${repository%%:*} && region=$$(echo $$registry | cut -d. -f4) && \
	docker build -f pipelines/sagemaker/container/monitoring.Dockerfile -t "$$image" . && \
	if echo "$$registry" | grep -q '\.dkr\.ecr\.'; then \
	  aws ecr describe-repositories --region $$region --repository-names "$$repository" >/dev/null 2>&1 || \
	    aws ecr create-repository --region $$region --repository-name "$$repository" >/dev/null; \
	  aws ecr get-login-password --region $$region | docker login --username AWS --password-stdin "$$registry"; \
	fi && docker push "$$image"

notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet jupyterlab==4.6.6
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf .pravah
