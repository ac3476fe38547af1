# The two commands of the README: `make run` and `make test`. Both create .venv and install what is
# pinned in requirements/lock.txt when needed (again only when the lock or the package metadata change).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MIRROR_DEFAULT := $(wildcard ../shared/datasets/sib-200)
export PRAVAH_DATA_MIRROR ?= $(if $(MIRROR_DEFAULT),$(abspath $(MIRROR_DEFAULT)),)

.PHONY: install browser run test lint bench notebooks clean images

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

# The project's images (aws/images.py: the runtime image for CPU and GPU instances, the monitoring image), each
# built from its Dockerfile in this folder and pushed to the environment's ECR under the tag the compiled
# pipelines name (the digest of what the build reads); `pravah cloud bootstrap` creates the repositories.
# Needs Docker and AWS credentials: make images ENVIRONMENT=prod
ENVIRONMENT ?= dev
images: $(STAMP)
	$(BIN)/python -c 'import sys; from aws.environments import load_environment; from aws.images import IMAGES, image_uri; \
	env = load_environment(sys.argv[1]); \
	[print(i.dockerfile, env.monitoring_image_uri if n == "monitoring" else image_uri(env.account, env.region, n)) \
	 for n, i in IMAGES.items()]' $(ENVIRONMENT) | while read -r dockerfile image; do \
	  registry=$${image%%/*} && region=$$(echo $$registry | cut -d. -f4) && \
	  docker build -f "$$dockerfile" -t "$$image" . && \
	  aws ecr get-login-password --region $$region | docker login --username AWS --password-stdin "$$registry" && \
	  docker push "$$image" || exit 1; \
	done

notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet jupyterlab==4.6.6
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf .pravah
