# nexotc — two commands do everything on a fresh machine (python3, node/npm, make):
#   make demo   an end-to-end OTC trade on a local anvil chain
#   make test   the whole test suite on anvil
# Both install what they need first (venv from requirements.lock, npm ci) and are idempotent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ANVIL := node_modules/.bin/anvil
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
# No telemetry, no compiler downloads: the vyper compiler comes from the lock.
export APE_DISABLE_TELEMETRY := 1

.PHONY: demo test deps postgres bench lint clean

deps: $(STAMP) $(ANVIL)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The desk store is tested on a real PostgreSQL server that the tests start themselves (tests/pgserver.py);
# this only makes sure Debian's server binaries are there.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  { echo "installing Debian's postgresql package (server binaries for the desk store tests)"; \
	    apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }

$(ANVIL): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch -h $(ANVIL)

demo: deps
	$(BIN)/ape run demo

# Test files run in parallel, one worker per core (pytest-xdist; each worker has its own anvil): whole files per
# worker, so module-scoped fixtures are built once, the slowest files first (tests/conftest.py).
# `make test TEST_WORKERS=0` runs everything in one process.
TEST_WORKERS ?= auto

test: deps postgres
	$(BIN)/ape compile
	$(BIN)/ape test tests -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: deps
	$(BIN)/python bench/gas.py
	$(BIN)/python bench/multisig.py
	$(BIN)/python bench/zk.py
	$(BIN)/python bench/zk.py --phases
	$(BIN)/python bench/kyc.py
	$(BIN)/python bench/hedge_save.py

lint: deps
	$(BIN)/ruff check nexotc_client tests scripts bench
	$(BIN)/ruff format --check nexotc_client tests scripts bench

clean:
	rm -rf $(VENV) node_modules .build .nexotc
