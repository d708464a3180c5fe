#!/usr/bin/env bash
# Set up (or refresh) the virtual environment from the project's own files, then
# run the main job or the test suite.
#
#   ./dev.sh main [args]   run the main job (rewardnets pipeline; args go to it)
#   ./dev.sh test [args]   lint, type-check, build the docs, run the tests
#   ./dev.sh setup         only create or refresh the virtual environment
set -euo pipefail
cd "$(dirname "$0")"

VENV="${REWARDNETS_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    # Reinstall only when the files that define the environment changed.
    local stamp="$VENV/.rewardnets-install"
    local want
    want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        # torch first: the pinned CPU build, so nothing pulls a CUDA build.
        "$VENV/bin/python" -m pip install --quiet -c constraints.txt torch
        "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[test]"
        echo "$want" > "$stamp"
    fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    setup)
        setup
        ;;
    main)
        setup
        "$VENV/bin/rewardnets" pipeline "$@"
        ;;
    test)
        setup
        export PATH="$PWD/$VENV/bin:$PATH"
        echo "== ruff"
        ruff check .
        ruff format --check .
        echo "== mypy"
        mypy
        echo "== docs"
        NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
        echo "== pytest"
        pytest "$@"
        ;;
    *)
        echo "usage: ./dev.sh {main|test|setup} [args]" >&2
        exit 2
        ;;
esac
