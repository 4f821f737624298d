#!/usr/bin/env bash
# Install toolrl and everything it needs into the current Python environment.
#   CPU machine: torch 2.13.0 CPU build (a local wheel when pip's find-links has one, else
#                PyTorch's CPU index), so pip never pulls the multi-GB CUDA build.
#   GPU machine (nvidia-smi works): the normal CUDA build from PyPI.
# Also installs bubblewrap (the Python sandbox of task=gsm8k) when apt-get is available, and
# says at the end whether the sandbox's full isolation (its default, required) works here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
quiet=(-q --disable-pip-version-check --root-user-action=ignore)

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "[install] GPU found: torch (CUDA build)"
  "$PY" -m pip install "${quiet[@]}" "torch>=2.4"
elif "$PY" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
  echo "[install] torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
else
  echo "[install] no GPU: torch==2.13.0 (CPU build)"
  # A local CPU wheel (pip's find-links) first, without its dependencies (they are not beside it),
  # which the second line then takes from the package index; else PyTorch's CPU index.
  if "$PY" -m pip install "${quiet[@]}" --no-index --no-deps "torch==2.13.0" 2>/dev/null; then
    "$PY" -m pip install "${quiet[@]}" "torch==2.13.0"
  else
    "$PY" -m pip install "${quiet[@]}" "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
  fi
fi

if ! command -v bwrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[install] bubblewrap (sandbox for task=gsm8k)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
      || echo "[install] WARNING: could not install bubblewrap; task=gsm8k (isolation=full) will refuse to start"
  else
    echo "[install] WARNING: bubblewrap missing (apt-get install -y bubblewrap); task=gsm8k (isolation=full) will refuse to start"
  fi
fi

echo "[install] toolrl and its dependencies"
"$PY" -m pip install "${quiet[@]}" -e ".[dev]"
"$PY" -c 'from orchestrator.tools.sandbox import isolation_problem as p; print("[install] sandbox: " + (p("full") or "full isolation works here"))' \
  || echo "[install] WARNING: could not check the sandbox's isolation"
echo "[install] done"
