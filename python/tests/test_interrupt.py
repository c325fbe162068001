"""Ctrl-C stops a long run (signals are checked between blocks and inside callbacks)."""
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent(
    """
    import sys, noether_sde as ns
    which = sys.argv[1]
    print("started", flush=True)
    try:
        if which == "sde":
            sde = ns.Sde(drift=lambda t, X: -X, diffusion=lambda t, X: 0.1 + 0 * X, dim=1, noise="additive")
            ns.simulate(sde, x0=[1.0], t_end=1e4, dt=1e-3, paths=4096, seed=0, progress=False)
        else:
            m = ns.models.ScalarFactorization()
            ns.simulate(m, method="em", t_end=100.0, dt=1e-3, paths=100000, seed=0, progress=False)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


@pytest.mark.parametrize("which", ["sde", "model"])
def test_sigint_interrupts_a_long_run(which, tmp_path):
    # each run would take hours; the test passes only if SIGINT stops it
    proc = subprocess.Popen([sys.executable, "-c", CHILD, which], stdout=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    assert proc.stdout.readline().strip() == "started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert out.strip() == "interrupted"
