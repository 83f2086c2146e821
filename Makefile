# The README's commands. Setup chatter goes to stderr so that `make preview FORMAT=json` prints
# the JSON document alone on stdout.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= staging
FORMAT ?= text
CONFIG ?=
PIP    := $(BIN)/pip install -q --disable-pip-version-check -c constraints.txt

.PHONY: preview test lint unit system-deps bench clean lambda mutate

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) >&2

# The program and the policy pack: enough for the offline preview.
$(VENV)/.runtime: $(BIN)/python requirements.txt policies/requirements.txt constraints.txt
	@echo "installing the program's pinned packages into $(VENV)" >&2
	@$(PIP) -r requirements.txt -r policies/requirements.txt >&2
	@touch $@

# Everything the tests and linters need on top.
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt constraints.txt
	@echo "installing the test and lint packages into $(VENV)" >&2
	@$(PIP) -r requirements-dev.txt >&2
	@touch $@

# make reports any failing recipe as 2; scripts/preview.sh keeps the preview's own status (1 = a
# mandatory policy violation, 2 = a user mistake), which is what CI calls.
preview: $(VENV)/.runtime
	@bash scripts/preview.sh $(STACK) --format $(FORMAT) $(if $(CONFIG),--config-file $(CONFIG))

# The rotation Lambda package for `pulumi up` (needs PyPI; the offline preview does not).
lambda: $(VENV)/.runtime
	@bash scripts/build-lambda.sh

system-deps:
	@bash scripts/install-system-deps.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	# The policy pack is a program of its own (the engine puts policies/ on sys.path).
	cd policies && ../$(BIN)/mypy --config-file ../pyproject.toml guardrails __main__.py

# The independent IAM simulator the access tests run (test-only, pinned by its lock file).
tests/access/node_modules/.package-lock.json: tests/access/package.json tests/access/package-lock.json | system-deps
	npm ci --prefix tests/access --no-audit --no-fund >&2

unit: $(VENV)/.dev tests/access/node_modules/.package-lock.json
	$(BIN)/pytest

test: $(VENV)/.dev system-deps lint unit

unit lint: | system-deps

bench: $(VENV)/.dev system-deps
	$(BIN)/python -m bench

# Mutation testing (mutmut), one module at a time; slow, so not part of `make test`.
# `make mutate MODULES=components/values.py` runs one; scores go to bench/results/mutation.json.
MODULES ?=
mutate: $(VENV)/.dev system-deps
	$(BIN)/python scripts/mutate.py $(MODULES)

clean:
	rm -rf $(VENV) build

# A simulated year of the example stacks' token-rotated secrets over moto (bench/life.py): rotations, daily refresh,
# weekly deploy, AWS's removal of old versions; values put back and versions kept, with and without the label.
# `make life LIFE_ARGS="--days 30 --every-hours 4"` for AWS's fastest rotation rate. Then a year of LIFE_SERVERS
# generated server credentials rotated against real PostgreSQL and Redis with consumer processes
# (tests/life/year.py; LIFE_SERVERS=0 skips it). Results: bench/results/life.json.
.PHONY: life
LIFE_ARGS ?=
LIFE_SERVERS ?= 200
# The recorded figures' settings (about 18 minutes here); the catalog's default 30/60/90 days take about an hour.
LIFE_SERVER_ARGS ?= --every-days 90,180,365 --check-hours 24
life: $(VENV)/.dev system-deps
	$(BIN)/python -m bench.life $(LIFE_ARGS)
	$(if $(filter-out 0,$(LIFE_SERVERS)),$(BIN)/python -m bench.life --servers $(LIFE_SERVERS) $(LIFE_SERVER_ARGS))
