"""Python-side benchmarks (numbers go to BENCHMARKS.md, "Python"; nothing is asserted).

1. A built-in model through Python against the same ensemble through the Rust API (the
   CLI binary, whose `simulate` is the Rust API plus JSON printing): scalar
   factorisation's SGD-SDE by Euler–Maruyama.
2. A Python-defined GBM `ns.Sde` (dX = 0.5 X dt + 0.3 X dW) with vectorised numpy
   callbacks, 10^4 paths × 10^3 steps, Euler–Maruyama, on the lockstep driver; and
   diffrax / torchsde on the same problem when they are importable.
3. A Python-defined model (``ns.models.Custom``, numpy per-sample gradients) against the
   built-in linear regression on the same data, EM on the SGD-SDE.

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
    """(best wall seconds, median wall seconds, best CPU seconds of this process)."""
    times, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        f()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(times), float(np.median(times)), min(cpu)


def main():
    quick = "--quick" in sys.argv
    cli = os.environ.get("NOETHER_SDE_CLI", os.path.join(os.path.dirname(__file__), "../../target/release/noether-sde"))
    print(f"noether_sde {ns.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()}")

    # 1. built-in model: Python vs the Rust API (through the CLI binary)
    paths, t_end = (512, 10.0) if quick else (2048, 20.0)
    model = ns.models.ScalarFactorization(v=1.0, sigma=1.0)
    kw = dict(method="em", eta=0.05, batch=4, t_end=t_end, dt=0.01, paths=paths, seed=1, save_every=1.0,
              observables=["charge", "loss", "sharpness"], progress=False)
    py_best, py_med, py_cpu = best_of(3, lambda: ns.simulate(model, **kw))
    args = [cli, "simulate", "--model", "scalar_factorization", "--method", "em", "--eta", "0.05", "--batch", "4",
            "--time", str(t_end), "--dt", "0.01", "--paths", str(paths), "--seed", "1", "--save-every", "1", "--json"]
    rust_best, rust_med, _ = best_of(3, lambda: subprocess.run(args, check=True, capture_output=True))
    steps = paths * int(round(t_end / 0.01))
    print(json.dumps({"builtin_scalar_factorization_em": {
        "paths": paths, "steps_per_path": int(round(t_end / 0.01)),
        "python_s_best": py_best, "python_s_median": py_med, "python_cpu_s": py_cpu,
        "rust_cli_s_best": rust_best, "rust_cli_s_median": rust_med,
        "ratio_python_over_rust": py_best / rust_best,
        "python_ns_per_path_step": 1e9 * py_best / steps}}))

    # 2. Python-defined GBM on the lockstep driver
    paths, steps = (2000, 1000) if quick else (10_000, 1000)
    sde = ns.Sde(drift=lambda t, X: 0.5 * X, diffusion=lambda t, X: 0.3 * X, dim=1, noise="scalar")
    run = lambda: ns.simulate(sde, x0=[1.0], t_end=1.0, dt=1.0 / steps, paths=paths, seed=1, save_at=[1.0],
                              progress=False)
    best, med, cpu = best_of(3, run)
    print(json.dumps({"python_gbm_sde_em": {"paths": paths, "steps": steps, "s_best": best, "s_median": med,
                                            "cpu_s": cpu, "ns_per_path_step": 1e9 * best / (paths * steps),
                                            "cpu_ns_per_path_step": 1e9 * cpu / (paths * steps)}}))
    try:
        print(json.dumps({"diffrax": bench_diffrax(paths, steps)}))
    except ImportError:
        print(json.dumps({"diffrax": "not installed"}))
    try:
        import torchsde  # noqa: F401
        print(json.dumps({"torchsde": "installed but not measured by this script"}))
    except ImportError:
        print(json.dumps({"torchsde": "not installed"}))
    print(json.dumps({"custom_vs_builtin_linear_regression_em": custom_vs_builtin(quick)}))
    print(json.dumps({"python_gbm_convergence_study": convergence_cost()}))
    print(json.dumps({"python_diagonal_sde_milstein": milstein_cost(quick)}))


def convergence_cost():
    """`ns.convergence` on a Python GBM (strong; em, milstein, rk_milstein; h = 1/8 … 1/64;
    reference 4× finer; 100 paths): callback calls and wall/CPU time per path and scheme."""
    calls = {"drift": 0, "diffusion": 0}

    def drift(t, X):
        calls["drift"] += 1
        return 0.5 * X

    def diffusion(t, X):
        calls["diffusion"] += 1
        return 0.3 * X

    sde = ns.Sde(drift=drift, diffusion=diffusion, dim=1, noise="scalar")
    schemes, paths = ["em", "milstein", "rk_milstein"], 100
    run = lambda: ns.convergence(sde, x0=[1.0], t_end=1.0, schemes=schemes, kind="strong",
                                 dts=[1 / 8, 1 / 16, 1 / 32, 1 / 64], paths=paths, seed=3)
    best, med, cpu = best_of(3, run)
    per = paths * len(schemes)
    return {"paths": paths, "schemes": schemes, "drift_calls_per_run": calls["drift"] // 3,
            "diffusion_calls_per_run": calls["diffusion"] // 3, "s_best": best, "s_median": med, "cpu_s": cpu,
            "ms_per_path_and_scheme": 1e3 * best / per, "cpu_ms_per_path_and_scheme": 1e3 * cpu / per}


def milstein_cost(quick):
    """Milstein on a Python SDE with d > 1: diagonal noise, d = m = 3 (a = 0.3 X,
    b = σ ∘ X), one block of paths × 1000 steps; em, milstein by central differences,
    milstein with the user's diagonal derivative (P, 3), rk_milstein; calls per step and
    ns per path-step."""
    sigma = np.array([0.4, 0.3, 0.2])
    paths, steps = (2000, 1000) if quick else (10_000, 1000)
    out = {"paths": paths, "steps": steps}
    for name, method, derivative in [("em", "em", None), ("milstein_difference", "milstein", None),
                                     ("milstein_derivative", "milstein", lambda t, X: np.broadcast_to(sigma, X.shape)),
                                     ("rk_milstein", "rk_milstein", None)]:
        calls = {"drift": 0, "diffusion": 0, "derivative": 0}

        def counted(key, f):
            def g(t, X):
                calls[key] += 1
                return f(t, X)
            return g

        sde = ns.Sde(drift=counted("drift", lambda t, X: 0.3 * X), diffusion=counted("diffusion", lambda t, X: sigma * X),
                     dim=3, noise="diagonal",
                     diffusion_derivative=None if derivative is None else counted("derivative", derivative))
        run = lambda: ns.simulate(sde, method=method, x0=[1.0, 1.0, 1.0], t_end=1.0, dt=1.0 / steps, paths=paths,
                                  seed=1, save_at=[1.0], progress=False)
        best, med, cpu = best_of(3, run)
        out[name] = {"calls_per_step": {k: v / calls["drift"] for k, v in calls.items()},
                     "s_best": best, "ns_per_path_step": 1e9 * best / (paths * steps)}
    return out


def custom_vs_builtin(quick):
    """3. ``ns.models.Custom`` (numpy per-sample gradients, one callback per step for a block
    of 64 paths) against the built-in ``LinearRegression`` on the same data, EM on the
    SGD-SDE; the callback's time is measured separately."""
    rng = np.random.default_rng(0)
    n, d = 200, 10
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
    in_callback = [0.0]

    def grads(theta):
        t = time.perf_counter()
        out = 2.0 * (theta @ x.T - y)[:, :, None] * x[None]
        in_callback[0] += time.perf_counter() - t
        return out

    paths, steps = (256, 50) if quick else (1024, 100)
    kw = dict(method="em", eta=0.05, batch=4, t_end=0.05 * steps, dt=0.05, paths=paths, seed=1, threads=1,
              observables=["theta"], progress=False)
    out = {"paths": paths, "steps": steps, "n": n, "d": d}
    for name, model in [("builtin", ns.models.LinearRegression(x, y)),
                        ("custom", ns.models.Custom(dim=d, n=n, per_sample_grads=grads))]:
        in_callback[0] = 0.0
        best, med, cpu = best_of(3, lambda: ns.simulate(model, **kw))
        out[name] = {"s_best": best, "cpu_s": cpu, "cpu_ns_per_path_step": 1e9 * cpu / (paths * steps),
                     "callback_s_per_run": in_callback[0] / 3}
    return out


def bench_diffrax(paths, steps):
    """The same GBM by diffrax's Euler on an UnsafeBrownianPath, vmapped over paths, jitted."""
    import diffrax
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    drift = diffrax.ODETerm(lambda t, y, args: 0.5 * y)

    def one(key):
        bm = diffrax.UnsafeBrownianPath(shape=(), key=key)
        terms = diffrax.MultiTerm(drift, diffrax.ControlTerm(lambda t, y, args: 0.3 * y, bm))
        sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, 1.0, dt0=1.0 / steps, y0=jnp.float64(1.0),
                                  saveat=diffrax.SaveAt(t1=True), max_steps=steps + 1,
                                  adjoint=diffrax.ForwardMode())
        return sol.ys[0]

    keys = jax.random.split(jax.random.PRNGKey(0), paths)
    solve = jax.jit(jax.vmap(one))
    solve(keys).block_until_ready()  # compile
    best, med, cpu = best_of(3, lambda: solve(keys).block_until_ready())
    return {"version": diffrax.__version__, "jax": jax.__version__, "s_best": best, "s_median": med,
            "cpu_s": cpu, "ns_per_path_step": 1e9 * best / (paths * steps),
            "cpu_ns_per_path_step": 1e9 * cpu / (paths * steps)}


if __name__ == "__main__":
    main()
