# serverless-cases: `make run` sets up and starts the service; `make test` sets up and runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .make

.PHONY: setup toolchain postgres test lint typecheck unit run bench clean

$(STAMPS)/venv: pyproject.toml requirements.lock
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $@

# The policy pack's own virtualenv (pulumi-policy pins a protobuf apart from the program's).
POLICY_VENV := policies/.venv
$(STAMPS)/policy-venv: policies/requirements.lock
	@mkdir -p $(STAMPS)
	@test -x $(POLICY_VENV)/bin/python || $(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r policies/requirements.lock
	@touch $@

# Cheap when the pinned CLI is cached; builds it from Go modules the first time.
toolchain: $(STAMPS)/venv
	@toolchain/ensure-pulumi.sh > $(STAMPS)/toolchain-bin

setup: $(STAMPS)/venv $(STAMPS)/policy-venv toolchain

# A PostgreSQL server for the many-nodes tests (and for trying a fleet on one machine): the
# machine's PostgreSQL binaries, else Debian's package; started if it is not running.
postgres:
	@mkdir -p $(STAMPS)
	@toolchain/ensure-postgres.sh > $(STAMPS)/postgres-url

lint: setup
	$(PY) -m ruff check .

typecheck: setup
	$(PY) -m mypy

# Two pytest workers (the machine's two cores: engine tests spend much of their time waiting
# on processes and simulated AWS latency); the slowest tests are listed at the end.
PYTEST_WORKERS ?= 2
unit: setup postgres
	SERVERLESS_CASES_TOOLCHAIN_BIN=$$(cat $(STAMPS)/toolchain-bin) SERVERLESS_CASES_TEST_POSTGRES=$$(cat $(STAMPS)/postgres-url) \
	  $(PY) -m pytest -n $(PYTEST_WORKERS) --durations=25 $(PYTEST_ARGS)

test: lint typecheck unit

run: setup
	@$(PY) -m service

# The read benchmarks' client is wrk (Debian's package), installed here if the machine lacks it.
bench: setup
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
	SERVERLESS_CASES_TOOLCHAIN_BIN=$$(cat $(STAMPS)/toolchain-bin) $(PY) benchmarks/run.py

clean:
	rm -rf $(STAMPS) $(VENV) $(POLICY_VENV) .pytest_cache .mypy_cache .ruff_cache
