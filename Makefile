# Two commands: `make quickstart` and `make test`. Both work from a fresh clone: they create
# .venv, install the one Debian package Open3D needs when it is missing, install the project.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test lint format setup sysdeps clean bench

setup: $(STAMP)

# Open3D's CPU wheel links libusb-1.0 at import time.
sysdeps:
	@if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing libusb-1.0-0 (needed by Open3D)"; \
	    (apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q libusb-1.0-0 >/dev/null)); \
	  else \
	    echo "Open3D needs libusb-1.0: run 'sudo apt-get install -y libusb-1.0-0' and retry"; exit 1; \
	  fi; \
	fi
	@# Debian's chromium for the demo's browser test (tests/test_demo_browser.py); no browser
	@# is downloaded by Playwright. Without root the test is skipped with that reason.
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing chromium (the demo's browser test)"; \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null)); \
	  else \
	    echo "the demo's browser test needs chromium: 'sudo apt-get install -y chromium' (skipped until then)"; \
	  fi; \
	fi

$(STAMP): pyproject.toml | sysdeps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest

# The main job end to end on built-in data, in a few minutes on 2 cores: render a small
# dataset, check it, draw one sample, train and evaluate the five variants (quick preset, one
# seed) and write the report with both tables. Rerunning resumes (finished runs are reused).
QS := quickstart_out
quickstart: setup
	$(BIN)/amodal-depth reproduce --preset quick --out $(QS)/report --work $(QS)/work
	$(BIN)/amodal-depth data verify $(QS)/work/data
	$(BIN)/amodal-depth data show $(QS)/work/data --split test --index 0 --out $(QS)/sample.png
	@# The committed weights (cpu-long preset, docs/training.md) on fresh unseen scenes: our
	@# room template, and the held-out shifted style (other lenses, shapes, textures, lights).
	@if [ -f weights/model.safetensors ]; then \
	  $(BIN)/amodal-depth data generate --out $(QS)/unseen --num 100 --seed 12345 --workers 2 && \
	  $(BIN)/amodal-depth evaluate --weights weights/model.safetensors --data $(QS)/unseen \
	    --split test --out $(QS)/weights_eval.json && \
	  $(BIN)/amodal-depth data generate --out $(QS)/shifted --num 40 --seed 12345 --style shifted \
	    --workers 2 && \
	  $(BIN)/amodal-depth evaluate --weights weights/model.safetensors --data $(QS)/shifted \
	    --split test --out $(QS)/weights_eval_shifted.json && \
	  $(BIN)/amodal-depth predict examples/room/rgb.png --masks examples/room/instances.png \
	    --depth examples/room/depth.png --out $(QS)/predict && \
	  $(BIN)/amodal-depth reconstruct $(QS)/predict --intrinsics examples/room/camera.json --glb \
	    --out $(QS)/reconstruct; \
	fi
	@echo
	@echo "quickstart done: report $(QS)/report/README.md, sample montage $(QS)/sample.png"
	@if [ -f $(QS)/weights_eval.json ]; then echo "committed weights on unseen scenes: $(QS)/weights_eval.json, shifted style: $(QS)/weights_eval_shifted.json"; fi
	@if [ -f $(QS)/predict/predict.json ]; then echo "the example photo from visible masks and a sensor depth: $(QS)/predict/overview.png, 3D: $(QS)/reconstruct/points.ply"; fi

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: setup
	$(PY) benchmarks/bench_generate.py
	$(PY) benchmarks/bench_metrics.py

clean:
	rm -rf $(VENV) quickstart_out .pytest_cache
