# Two commands on a fresh machine:
#   make demo   sets up .venv and stylizes the bundled sample photo (no images of yours, no downloads)
#   make test   sets up .venv and runs the test suite
#   make serve  sets up .venv with the web extra and opens the studio in a browser
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned: a bare "torch" requirement with no torch installed pulls a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: demo test lint check-wheel serve setup setup-web setup-test gallery bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-web: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[web]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

setup-web: $(VENV)/.installed-web

setup-test: $(VENV)/.installed-test

demo: setup
	$(BIN)/impasto --demo -o demo.png
	@echo "wrote demo.png"

serve: setup-web
	$(BIN)/impasto serve --open

test: setup-test lint
	$(BIN)/python -m pytest -q
	$(BIN)/python tests/check_wheel.py

# sdist + wheel with no build warnings, installed in a fresh venv (torch pinned first), impasto --demo from it.
check-wheel: setup-test
	$(BIN)/python tests/check_wheel.py

# Lint, format and type checks over the whole tree (config in pyproject.toml); part of `make test`.
lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

gallery: setup
	$(BIN)/python examples/gallery.py

bench: setup-test
	$(BIN)/python benchmarks/throughput.py --quick
	$(BIN)/python benchmarks/vs_pastiche.py --quick

clean:
	rm -rf $(VENV) demo.png
