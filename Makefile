# Two commands on a fresh machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
HOST ?= 127.0.0.1
PORT ?= 8000
# uv from PATH, or bootstrapped into .tools/ with the machine's Python and pip.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test test-sqlite lint install bench-audit bench bench-quick bench-models bench-reports \
	bench-sandbox
.DEFAULT_GOAL := run

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python python3.11
	touch $@

install: .venv/.installed

run: install
	HOST=$(HOST) PORT=$(PORT) scripts/run.sh

test: install
	.venv/bin/python scripts/with_services.py -- scripts/test.sh

test-sqlite: install
	.venv/bin/python scripts/with_services.py -- scripts/test.sh sqlite

lint: install
	.venv/bin/ruff check .

bench-audit: install
	.venv/bin/python scripts/with_services.py -- .venv/bin/python bench/audit_bench.py $(BENCH_ARGS)

# Side by side with mlflow server (bench/harness.py); `make bench-quick` is the 5-minute version.
bench: install
	UV=$(UV) .venv/bin/python bench/harness.py $(BENCH_ARGS)

bench-quick: install
	UV=$(UV) .venv/bin/python bench/harness.py --quick $(BENCH_ARGS)

# Disclosure generation: seconds per PDF for 1 and 20 decisions (bench/reports_bench.py).
bench-reports: install
	.venv/bin/python scripts/with_services.py -- .venv/bin/python bench/reports_bench.py $(BENCH_ARGS)

# Packaging and scoring beside `mlflow models serve` (bench/models_bench.py), about 3 minutes.
bench-models: install
	UV=$(UV) .venv/bin/python bench/models_bench.py $(BENCH_ARGS)

# Sandbox start cost, and a project run beside `mlflow run` (bench/sandbox_bench.py), about
# 15 minutes; its own throwaway PostgreSQL and Redis.
bench-sandbox: install
	UV=$(UV) .venv/bin/python bench/sandbox_bench.py $(BENCH_ARGS)
