# Two commands a newcomer needs: `make run` (the app, with the bundled model) and `make test`.
# Each creates .venv/ in the repo root if missing and installs what it needs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch; training and its tests need it, inference does not.
TORCH := torch==2.13.0

.PHONY: run test lint typecheck unit bench report clean image image-cluster lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime only: NumPy, ONNX Runtime, OpenCV (no PyTorch).
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[app]'
	touch $@

# onnxruntime-web for the student page comes from the npm registry (sha512 checked), not from a CDN at run time.
ORT_WEB := classmood/classroom/static/vendor/onnxruntime-web/VERSION
$(ORT_WEB): classmood/classroom/vendor.py | $(BIN)/python
	$(BIN)/python -m classmood.classroom.vendor
	touch $@

# Everything: training extra (PyTorch CPU build) and the dev tools.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[train,app,postgres,cluster,dev]'
	touch $@

# The classroom web app on http://localhost:8501 (HOST=0.0.0.0 needs CLASSMOOD_PASSWORD_HASH; see README).
run: $(VENV)/.runtime $(ORT_WEB)
	$(BIN)/classmood app --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8501)

lint: $(VENV)/.dev
	$(BIN)/ruff check classmood tests
	$(BIN)/ruff format --check classmood tests

typecheck: $(VENV)/.dev
	$(BIN)/mypy

unit: $(VENV)/.dev $(ORT_WEB)
	$(BIN)/python -m pytest -q

test: lint typecheck unit

# Speed of the shipped models, the video pipeline on a synthetic gallery, the live worker, reading faces
# through real-call degradations, the face gate on cluttered call screenshots, ids through layout changes
# and cuts, memory over a simulated hour, and the student-side hub with 50 students (--pipeline, --robust and --events need ../shared FER2013).
bench: $(VENV)/.dev
	$(BIN)/classmood bench
	$(BIN)/classmood bench --pipeline
	$(BIN)/classmood bench --live
	$(BIN)/classmood bench --robust
	$(BIN)/classmood bench --clutter
	$(BIN)/classmood bench --events
	$(BIN)/classmood bench --soak
	$(BIN)/classmood bench --students 50

report: $(VENV)/.dev
	$(BIN)/classmood report --runs docs/runs --out docs/models.md --readme README.md --experiments docs/experiments.md

# The OCI image in build/oci (deploy/build_image.sh): Debian bookworm from the Debian archive (mmdebstrap),
# the wheels of deploy/requirements.lock, no registry and no container run. Needs root, mmdebstrap and umoci.
# BASE=python:3.11-slim takes the base from a registry with skopeo instead (written, not run here).
BASE ?= debian:bookworm
image: $(VENV)/.runtime $(ORT_WEB)
	PYTHON=$(BIN)/python BASE=$(BASE) deploy/build_image.sh

# The same image with Ray (the cluster extra) in build/oci-cluster, for `classmood batch` on a Ray cluster.
image-cluster: $(VENV)/.runtime $(ORT_WEB)
	PYTHON=$(BIN)/python BASE=$(BASE) OCI=build/oci-cluster LOCK=deploy/requirements-cluster.lock deploy/build_image.sh

# Re-pin the image's runtime dependencies (deploy/requirements.lock, sha256 of each wheel) after a change
# to pyproject.toml's dependencies; needs CPython 3.11 on Linux x86_64, the image's.
lock: | $(BIN)/python
	$(BIN)/python deploy/lock.py
	$(BIN)/python deploy/lock.py --extras app,postgres,cluster --out deploy/requirements-cluster.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
