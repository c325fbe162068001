#!/usr/bin/env bash
# Every test of the project, Rust and Python, on a fresh machine:
#   1. cargo test --release (the library, the CLI and the lockstep driver);
#   2. a throw-away virtual environment under target/, the Python test dependencies from
#      PyPI, `pip install ./python` (maturin builds the extension from this checkout);
#   3. pytest python/tests.
# Set NOETHER_SDE_SKIP_RUST=1 to run only the Python half.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [[ "${NOETHER_SDE_SKIP_RUST:-0}" != 1 ]]; then
    cargo test --release
fi

python=${PYTHON:-python3}
venv="$root/target/test-venv"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "maturin>=1.9.4,<2" numpy pytest pandas "dask[distributed]" tqdm
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$root/python"
# the CLI whose JSON the Python tests compare against (built by cargo test above)
cargo build --release --quiet --bin noether-sde
export NOETHER_SDE_CLI="$root/target/release/noether-sde"
cd "$root/python"
"$venv/bin/pytest" -q tests
