# QIE Sentinel: `make setup` installs everything into this folder (Python venv, npm
# packages, the solcjs adapter); `make test` runs the whole suite; `make run` runs the
# main job. Nothing here needs anything but python3, node and npm on the machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
# Must equal the `solc` version in package.json: py-solc-x finds the compiler by this name.
SOLC_VERSION := 0.8.28
SOLC_ADAPTER := .solcx/solc-v$(SOLC_VERSION)

# Every command below sees the venv, anvil and the adapter without activation.
export SOLCX_BINARY_PATH := $(CURDIR)/.solcx
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export MPLBACKEND := Agg

.PHONY: help setup postgres redis prometheus chromium cluster test test-long run chain slither bench gas clean

help:
	@echo "make setup   install the venv, npm packages and compiler adapter"
	@echo "make run     the main job on local defaults (see README.md)"
	@echo "make test    the whole test suite (contracts beside the rest)"
	@echo "make test-long  only the long forms of the tests (marked long; not in make test)"
	@echo "make cluster the distributed keepers on one machine (PostgreSQL, Redis, workers)"
	@echo "make chain   a long-lived anvil on 127.0.0.1:8545 for ape run by hand"
	@echo "make slither static analysis of the contracts"
	@echo "make bench   benchmarks under bench/ (not part of the tests)"
	@echo "make gas     gas report for Vault and Executor against a plain router swap"

setup: $(VENV)/.installed node_modules/.installed $(SOLC_ADAPTER) postgres redis prometheus chromium

# The keeper suite runs against a real PostgreSQL server (tests start and stop it).
# Debian's package provides the binaries; install it when they are missing (as root).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } || \
		{ echo "PostgreSQL server binaries are missing: install Debian's postgresql package (as root)"; exit 1; }

# Redis: the distributed form's task broker (make cluster, tests/keepers/test_cluster.py).
redis:
	@command -v redis-server >/dev/null || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } || \
		{ echo "redis-server is missing: install Debian's redis-server package (as root)"; exit 1; }

# The alert rules are checked with promtool and a test scrapes a keeper with a real
# Prometheus: Debian's package has both; install it when missing (as root).
prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; } || \
		{ echo "Prometheus and promtool are missing: install Debian's prometheus package (as root)"; exit 1; }

# The status page is tested in a headless Chromium driven by Selenium through
# chromedriver: Debian's chromium and chromium-driver packages, installed when missing.
chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } || \
		{ echo "chromium and chromedriver are missing: install Debian's chromium and chromium-driver packages (as root)"; exit 1; }

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade "pip==26.3"
	$(VENV)/bin/pip install --quiet -e ".[test]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# py-solc-x expects a `solc-v<version>` executable; ours runs solcjs through the
# adapter. The venv's activate script gets the same setting and a link to anvil, so
# plain `ape compile` / `ape test` work after `source .venv/bin/activate`.
$(SOLC_ADAPTER): tools/solc_adapter.js node_modules/.installed $(VENV)/.installed
	mkdir -p .solcx
	printf '#!/bin/sh\nexec node "%s/tools/solc_adapter.js" "$$@"\n' "$(CURDIR)" > $@
	chmod +x $@
	ln -sf "$(CURDIR)/node_modules/.bin/anvil" $(VENV)/bin/anvil
	grep -q SOLCX_BINARY_PATH $(VENV)/bin/activate || \
		echo 'export SOLCX_BINARY_PATH="$(CURDIR)/.solcx"' >> $(VENV)/bin/activate

# The contract suite, the e2e tests, the fault scenarios and the rest run side by side (tools/run_tests.sh).
test: setup
	ape compile
	tools/run_tests.sh

# The long forms (pytest marker `long`, which the pytest config leaves out by default).
test-long: setup
	ape compile
	ape test tests -m long

run: setup
	tools/run_local.sh

# The distributed form on one machine (README, Scaling out): PostgreSQL, Redis, a
# dispatcher and two workers as processes while the market moves; ARGS go to `ape run cluster`.
cluster: setup
	tools/run_local.sh --cluster $(ARGS)

# A long-lived local chain for working by hand: run it in its own terminal, then
# `export APE_FOUNDRY_HOST=http://127.0.0.1:8545` before `ape run ...`.
chain: setup
	anvil --port 8545

# Slither over our contracts, findings triaged in slither.config.json and inline.
slither: setup
	slither contracts --solc $(SOLC_ADAPTER) --solc-standard-json --config-file slither.config.json

bench: setup
	for script in bench/*.py; do python "$$script" || exit 1; done

gas: setup
	python bench/gas.py

clean:
	rm -rf $(VENV) node_modules .build .solcx contracts/.cache
