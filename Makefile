# Two commands for a fresh machine (see README): `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: setup demo test lint format bench clean

setup:
	bash scripts/setup.sh

demo: setup  ## set up, then run the main job on the built-in default
	.venv/bin/ladkit bandit

test: setup  ## set up, then lint and run the whole test suite
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: setup
	$(PY) benchmarks/bandit_speed.py

clean:
	rm -rf .venv runs .pytest_cache .ruff_cache
