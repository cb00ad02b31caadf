# Two commands for a fresh machine: `make run` (try paperbot) and `make test` (run the tests).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

# torch is the one dependency outside the lock files: the CPU build comes from PyTorch's own
# index (the default index's Linux build bundles CUDA, several GB). Where that index cannot be
# reached (no route, a firewall, a machine with its own mirror), the default index serves it.
TORCH       = torch==2.13.0
TORCH_INDEX = https://download.pytorch.org/whl/cpu
# Every other dependency, pinned with hashes (`make lock` writes them): requirements.lock for
# the app (the Docker image), requirements-test.lock for the app and its tests (CI).
LOCK      = requirements.lock
TEST_LOCK = requirements-test.lock

.PHONY: run test audit install install-test lock clean

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

# CPU torch first (without its dependencies: the lock has them, hashed), so that nothing asks
# for another torch. One try at PyTorch's index, 15 s at most, before the fallback.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-deps --retries 0 --timeout 15 --index-url $(TORCH_INDEX) $(TORCH) \
		|| $(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed $(TEST_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(TEST_LOCK)
	touch $@

# Re-resolve the lock files after a change to pyproject.toml's dependencies, keeping every pin
# that still fits (`make lock UPGRADE=--upgrade` moves them all to the newest). The torch pin
# is a constraint so that its dependencies are locked for the CPU build; torch itself stays out.
# Run where PyTorch's CPU index is reachable (or where pip finds the CPU wheel otherwise:
# `make lock LOCK_INDEX=`).
LOCK_VENV  = build/lock-venv
LOCK_INDEX = --extra-index-url $(TORCH_INDEX)
LOCK_ARGS  = --quiet --generate-hashes --strip-extras --unsafe-package torch \
	--no-emit-index-url --no-emit-find-links -c $(LOCK_VENV)/torch.txt $(UPGRADE)
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet pip-tools
	echo "$(TORCH)+cpu" > $(LOCK_VENV)/torch.txt
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile $(LOCK_ARGS) \
		--pip-args "$(LOCK_INDEX)" --extra test -o $(TEST_LOCK) pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile $(LOCK_ARGS) \
		--pip-args "$(LOCK_INDEX)" -o $(LOCK) pyproject.toml

clean:
	rm -rf $(VENV) build *.egg-info
