# GaitPay. Two commands on a fresh machine:
#   make demo   set up .venv and run the main job (gaitpay demo: enrol, visit, charge, summarise)
#   make test   set up .venv and run every check and the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv gen check-gen lint-proto breaking test demo up down status clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools==84.2.1
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: $(STAMP)

# Regenerate gen/, build/gaitpay.binpb and docs/errors.md from protos/.
gen: venv
	$(PY) tools/protogen.py

# CI: the committed gen/ must be exactly what the protos produce.
check-gen: gen
	@git diff --exit-code --stat -- gen docs/errors.md || { echo "gen/ or docs/errors.md is stale: run make gen and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- gen)" || { echo "untracked files in gen/: run make gen and commit"; git status --porcelain -- gen; exit 1; }

lint-proto: gen
	$(VENV)/bin/buf lint build/gaitpay.binpb --path gaitpay --config buf.yaml

breaking: gen
	tools/buf_breaking.sh

test: venv check-gen lint-proto breaking
	$(PY) -m pytest -q

# The main job: the whole stack up, customers enrolled, store visits with injected faults,
# a summary and build/demo-report.json; the stack goes down again afterwards.
demo: venv
	mkdir -p build
	$(VENV)/bin/gaitpay demo --report build/demo-report.json

up: venv
	$(VENV)/bin/gaitpay up
status: venv
	$(VENV)/bin/gaitpay status
down: venv
	$(VENV)/bin/gaitpay down

clean:
	-$(VENV)/bin/gaitpay down
	rm -rf $(VENV) build .gaitpay
