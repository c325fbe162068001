"""Shards on a Dask cluster merge exactly: bit-identical to the local run."""
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
