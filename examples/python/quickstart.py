"""Quickstart: the Noether flow of scalar factorisation on your own synthetic data set.

ℓ(u, w; x, y) = (u w x − y)² has the rescaling symmetry u → e^λ u, w → e^{−λ} w with
charge C = u² − w² (THEORY §2). Gradient descent conserves C; SGD and its SDE move it
along the Noether flow dC/dt = η c_B Tr[A Σ A] towards the noise equilibrium (THEORY
§3–§4). This script draws a data set, runs GD, SGD and the SGD-SDE (Euler–Maruyama)
from the same start and plots the mean charge with 95 % confidence bands.

    pip install ./python matplotlib
    python examples/python/quickstart.py            # writes quickstart.png
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import noether_sde as ns

# --- your own data: y = v x + noise, with a heavy-ish tail in x
rng = np.random.default_rng(2024)
n = 512
x = rng.standard_t(df=8, size=(n, 1))
y = 1.0 * x + 0.7 * rng.normal(size=(n, 1))

model = ns.models.ScalarFactorization(X=x, y=y, theta0=[2.0, 0.5])
eta, batch, t_end = 0.05, 4, 20.0
print("start charge", model.charge(model.theta0))
print("theory:", {k: v for k, v in model.predict(eta=eta, batch=batch).items() if np.isscalar(v)})

runs = {
    "GD": ns.simulate(model, method="gd", eta=eta, batch=batch, t_end=t_end, paths=1, seed=1,
                      save_every=0.5, observables=["charge"]),
    "SGD": ns.simulate(model, method="sgd", eta=eta, batch=batch, t_end=t_end, paths=256, seed=1,
                       save_every=0.5, observables=["charge", "loss"]),
    "SGD-SDE (EM)": ns.simulate(model, method="em", eta=eta, batch=batch, t_end=t_end, dt=eta / 2,
                                paths=256, seed=1, save_every=0.5, observables=["charge", "loss"]),
}

fig, ax = plt.subplots(figsize=(6.5, 4))
for (label, r), color in zip(runs.items(), ["black", "tab:blue", "tab:orange"]):
    c = r["charge"]
    ax.plot(r.t, c.mean, color=color, label=label)
    if r.finished > 1:
        ax.fill_between(r.t, c.ci_low, c.ci_high, color=color, alpha=0.25, linewidth=0)
ax.set_xlabel("t (SDE time, steps × η)")
ax.set_ylabel("charge C = u² − w²")
ax.set_title("Noether flow of scalar factorisation (95 % bands)")
ax.legend()
fig.tight_layout()
out = sys.argv[1] if len(sys.argv) > 1 else "quickstart.png"
fig.savefig(out, dpi=120)
print("wrote", out)
print(runs["SGD-SDE (EM)"].to_pandas().tail())
