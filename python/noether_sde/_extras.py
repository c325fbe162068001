"""Convergence studies and the report (thin wrappers; see their docstrings)."""
from __future__ import annotations

import os
import subprocess
from typing import Optional


def convergence(*args, **kwargs):
    """Strong/weak convergence study of schemes on an SDE (not yet exposed to Python).

    Use the Rust API (``noether_sde::analysis::convergence``) or the CLI for now.
    """
    raise NotImplementedError(
        "ns.convergence is not bound yet: use noether_sde::analysis::convergence from Rust"
    )


def reproduce(out: str = "report", quick: bool = True, cargo_dir: Optional[str] = None) -> str:
    """Runs the paper-reproduction report (``noether-sde reproduce``) into ``out``.

    The report is the CLI's (src/report): this calls ``cargo run --release -- reproduce``
    in the crate's checkout ``cargo_dir`` (default: the ``NOETHER_SDE_DIR`` environment
    variable). Returns ``out``.
    """
    root = cargo_dir or os.environ.get("NOETHER_SDE_DIR")
    if not root:
        raise FileNotFoundError(
            "reproduce needs the crate's checkout: pass cargo_dir= or set NOETHER_SDE_DIR"
        )
    cmd = ["cargo", "run", "--release", "--", "reproduce", "--out", os.path.abspath(out)]
    if quick:
        cmd.append("--quick")
    subprocess.run(cmd, cwd=root, check=True)
    return out
