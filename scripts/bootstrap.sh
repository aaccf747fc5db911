#!/usr/bin/env bash
# Create .venv and install Tether with every extra the examples and tests use.
# llama-cpp-python has no binary wheel: the first install builds it from source
# (about 16 minutes on 2 cores); pip caches the built wheel, so later installs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
# The code sandbox (tether.sandbox) needs bubblewrap and libseccomp from the system.
if ! command -v bwrap >/dev/null 2>&1 || ! ldconfig -p 2>/dev/null | grep -q libseccomp.so.2; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing bubblewrap and libseccomp2 (apt-get)"
        apt-get update -qq && apt-get install -y -qq bubblewrap libseccomp2 >/dev/null
    else
        echo "==> WARNING: bubblewrap (bwrap) or libseccomp2 is missing: the sandbox tests"
        echo "    will be skipped and tether.sandbox will refuse to run. Install them as root:"
        echo "    apt-get install bubblewrap libseccomp2   (Fedora: dnf install bubblewrap libseccomp)"
    fi
fi
python=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $python"
    "$python" -m venv .venv
fi
ticker=""
if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
    echo "==> installing llama-cpp-python 0.3.36; without a cached wheel pip compiles it from"
    echo "    source: about 16 minutes on 2 cores, once (the wheel is cached afterwards)."
    start=$SECONDS
    ( while sleep 60; do
        echo "    ... still installing (llama-cpp-python build), $(( (SECONDS - start) / 60 )) min so far"
      done ) &
    ticker=$!
    trap '[ -n "$ticker" ] && kill "$ticker" 2>/dev/null' EXIT
fi
echo "==> pip install -e '.[local,server,openai,anthropic,otel,memory,dev]'"
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e '.[local,server,openai,anthropic,otel,memory,dev]'
echo "==> environment ready"
