"""Shards on a Dask cluster merge exactly: bit-identical to the local run."""
import numpy as np
import pytest

import noether_sde as ns

distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_sharded_model_ensemble_is_bit_identical_to_the_local_run(client):
    model = ns.models.ScalarFactorization(v=1.0, sigma=1.0)
    kw = dict(method="em", eta=0.05, batch=4, t_end=1.0, dt=0.01, paths=300, seed=4,
              observables=["charge", "loss"], save_every=0.25)
    local = ns.simulate(model, **kw)
    for shards in (2, 3):
        remote = ns.simulate(model, client=client, shards=shards, **kw)
        assert remote.state == local.state
        for name in ("charge", "loss"):
            assert remote[name].mean.tolist() == local[name].mean.tolist()
            assert remote[name].std.tolist() == local[name].std.tolist()


def test_sharded_python_sde_is_bit_identical_to_the_local_run(client):
    def drift(t, X):
        return 0.5 * X

    def diffusion(t, X):
        return 0.3 * X

    sde = ns.Sde(drift=drift, diffusion=diffusion, dim=1, noise="scalar")
    kw = dict(x0=[1.0], t_end=0.5, dt=0.01, paths=200, seed=8)
    local = ns.simulate(sde, **kw)
    remote = ns.simulate(sde, client=client, **kw)
    assert remote["x"].mean.tolist() == local["x"].mean.tolist()
    assert remote.state == local.state


def test_callable_observables_and_custom_models_on_the_cluster(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = X @ np.array([1.0, -1.0]) + 0.1 * rng.normal(size=30)
    # a lambda: shipped to the workers by Dask's cloudpickle
    model = ns.models.Custom(dim=2, n=30, per_sample_grads=lambda th: 2.0 * ((th @ X.T) - y)[:, :, None] * X[None],
                             theta0=[0.5, 0.5])

    def norm(theta):
        return np.linalg.norm(theta, axis=1)

    kw = dict(method="sgd", eta=0.05, batch=3, t_end=1.0, paths=150, seed=5, save_every=0.5,
              observables=["charge", norm])
    local = ns.simulate(model, **kw)
    remote = ns.simulate(model, client=client, shards=3, **kw)
    for name in ("charge", "norm"):
        assert remote[name].mean.tobytes() == local[name].mean.tobytes()
        assert remote[name].ci_high.tobytes() == local[name].ci_high.tobytes()
    builtin = ns.models.ScalarFactorization(v=1.0, sigma=1.0)
    kw = dict(method="em", eta=0.05, batch=4, t_end=0.5, dt=0.01, paths=100, seed=4, observables=["loss", norm])
    local = ns.simulate(builtin, **kw)
    remote = ns.simulate(builtin, client=client, keep_paths=True, **kw)
    assert remote["norm"].mean.tobytes() == local["norm"].mean.tobytes()
    assert remote["loss"].paths.shape == (100, len(local.t))
