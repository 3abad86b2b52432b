#!/usr/bin/env bash
# Idempotent set-up: creates .venv in the repo root when missing and installs the pinned dependencies
# (torch 2.13.0 first and alone, so pip never pulls a CUDA build), then the project itself (editable).
# A stamp file makes a second call a no-op unless requirements.lock or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
# moto (an S3-protocol server for the Postgres + S3 lake tests) in its own venv: it needs botocore, whose
# python-dateutil<3 clashes with the project's pin; it runs as a separate server process. Idempotent.
if [ ! -x .venv-s3/bin/moto_server ]; then
  echo "[setup] creating .venv-s3 with moto[server]==5.2.5 (the test S3 server)"
  { "$PY" -m venv .venv-s3 && .venv-s3/bin/pip install -q "moto[server]==5.2.5"; } >/dev/null 2>&1 \
    || echo "[setup] could not install moto into .venv-s3; the S3 lake tests will be skipped" >&2
fi
STAMP=.venv/.georeset-installed
WANT="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "[setup] .venv is up to date"
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "[setup] installing torch==2.13.0 (CPU) first"
LOG=.venv/setup.log
pipi() { .venv/bin/pip install "$@" >>"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; echo "[setup] pip install $* failed (full log: $LOG)" >&2; exit 1; }; }
: > "$LOG"
pipi "torch==2.13.0"
echo "[setup] installing pinned dependencies from requirements.lock (a few minutes on a cold cache)"
pipi -r requirements.lock
pipi --no-deps -e .
.venv/bin/python -c "import georeset, spacy, duckdb, rasterio, pystac_client, sentence_transformers, airflow" \
  || { echo "[setup] dependency check failed; see the pip output above" >&2; exit 1; }
echo "$WANT" > "$STAMP"
echo "[setup] done"
