# The two commands a newcomer needs:  make run   and   make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint check bench fuzz clean deps electrumx vectors

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# An Electrum server (ElectrumX's e-x) for the light-backend tests, in its own venv so its
# dependencies never pin Torv's.
EX_VENV := .venv-electrumx
EX_STAMP := $(EX_VENV)/.installed
$(EX_STAMP):
	test -d $(EX_VENV) || $(PYTHON) -m venv $(EX_VENV)
	$(EX_VENV)/bin/pip install -q 'e-x[leveldb]==2.0.0'
	touch $(EX_STAMP)
electrumx: $(EX_STAMP)

# System packages the tests need: Litecoin Core for the regtest chain, iproute2 for `ss` and
# `ip netns`, nftables and miniupnpd for the home routers of tests/natlab.py.
deps:
	@command -v litecoind >/dev/null 2>&1 && command -v ss >/dev/null 2>&1 && command -v nft >/dev/null 2>&1 && \
	  command -v miniupnpd >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq litecoind \
	   iproute2 nftables miniupnpd-nftables)

run: $(STAMP) deps
	$(BIN)/torv demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(STAMP) $(EX_STAMP) deps lint
	$(BIN)/pytest -q -p no:cacheprovider

# The fast loop (under a minute): lint, types, and every test that needs no chain and starts
# no process (protocol/, wallet/, in-process node and TUI tests, the vectors, the fuzzer).
check: $(STAMP) lint
	$(BIN)/pytest -q -p no:cacheprovider -m "not chain and not multiprocess"

# Rewrite tests/vectors/*.json from the code (after a deliberate wire change; say so in
# docs/protocol.md in the same commit).
vectors: $(STAMP)
	$(BIN)/python -m tests.vectors.build

# The benchmarks behind docs/performance.md (about 20 minutes; never part of `make test`).
bench: $(STAMP) $(EX_STAMP) deps
	$(BIN)/python bench/propagation.py --nodes 5 --listings 20
	$(BIN)/python bench/propagation.py --nodes 10 --listings 20
	$(BIN)/python bench/propagation.py --nodes 20 --listings 20
	$(BIN)/python bench/scale.py --vendors 200 --listings 500
	$(BIN)/python bench/search.py --listings 100000
	$(BIN)/python bench/own_changes.py
	$(BIN)/python bench/flood.py --seconds 30 --flooders 3 --nice
	$(BIN)/python bench/trade.py --trades 10
	$(BIN)/python bench/mailbox.py --nodes 10 --rounds 5
	$(BIN)/python bench/chain_latency.py --rounds 5
	$(BIN)/python bench/nat.py --messages 100
	$(BIN)/python bench/nat.py --messages 100 --symmetric
	$(BIN)/python bench/nat_trade.py --trades 10
	$(BIN)/python bench/nat_trade.py --trades 10 --symmetric

# A million hostile inputs through every decoder a peer's bytes reach (about 2 minutes).
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz --inputs 1000000

clean:
	rm -rf $(VENV) $(EX_VENV) .pytest_cache .mypy_cache .ruff_cache
