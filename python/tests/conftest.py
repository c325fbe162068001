"""Shared fixtures: the CLI binary whose JSON the Python results are compared with."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli():
    """Path of the release `noether-sde` binary (built by scripts/test.sh)."""
    path = os.environ.get("NOETHER_SDE_CLI") or str(ROOT / "target" / "release" / "noether-sde")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "noether-sde"], cwd=ROOT, check=True)
    return path
