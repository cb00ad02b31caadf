# Two commands for a fresh machine: `make run` (try paperbot) and `make test` (run the tests).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test audit install install-test clean

run: install
	$(BIN)/paperbot console

test: install-test
	$(BIN)/pytest

# Known vulnerabilities in the installed dependencies. Needs pypi.org's JSON API (or OSV with
# --vulnerability-service osv); --strict fails when a package cannot be checked, so an
# unreachable service is a failure, never a silent pass.
audit: install
	$(BIN)/pip install --quiet pip-audit
	$(BIN)/pip-audit --strict --skip-editable

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# CPU torch first: any other torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info
