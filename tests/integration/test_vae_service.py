"""The VAE service over a real NATS (particles in; latent table, events, artefacts out) and gRPC."""

import asyncio
import tempfile
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2

from pointillist.core.bus import particles_to_proto
from pointillist.core.rpc import channel, create_server
from pointillist.core.table import LocalizationTable
from pointillist.simulator.particles import ParticleSimConfig, simulate_particles
from pointillist.v1 import run_pb2, vae_pb2, vae_pb2_grpc
from pointillist.vae.engine import Settings, embed_table, vae_config
from pointillist.vae.service import VaeService, VaeWorker
from pointillist.vae.training import TrainedVae

pytestmark = pytest.mark.integration

SETTINGS = Settings(vae_config({"epochs": 2, "seed": 0}), analyze=True, n_bins=4)
N_PARTICLES = 24


@pytest.fixture(scope="module")
def simulated():
    return simulate_particles(
        ParticleSimConfig(
            kind="npc2d", n_particles=N_PARTICLES, localizations_per_site=4, radius_spread_nm=8
        ),
        3,
    )


def with_bad_particles(table: LocalizationTable) -> LocalizationTable:
    """Add particle 1000 with 2 localizations and particle 1001 with a NaN coordinate."""
    bad = LocalizationTable(
        {
            "x": [1.0, 2.0, 0.0, np.nan, 5.0, 6.0],
            "y": [1.0, 2.0, 0.0, 1.0, 5.0, 6.0],
            "particle": [1000, 1000, 1001, 1001, 1001, 1001],
            "site": [0, 0, 0, 0, 0, 0],
        },
        check_finite=False,
    )
    cols = {c: np.concatenate([table[c], bad[c]]) for c in table.columns}
    return LocalizationTable(cols, check_finite=False)


async def test_bus_round_trip_skips_bad_particles_and_stores_model_and_report(
    bus, run_id, simulated, run_events
):
    table = with_bad_particles(simulated.localizations)
    await bus.publish_particles(
        run_id, table, 0, truth=simulated.truth, dimensions=2, particle_kind="npc2d"
    )
    await bus.publish_end_of_acquisition(run_id, {"particles": 0})
    worker = VaeWorker(bus, SETTINGS, durable=f"vae-{run_id}", run_id=run_id)
    got = []
    await worker.start()
    try:
        async with bus.consumer("latent", f"read-{run_id}", run_id=run_id) as c:
            await asyncio.wait_for(c.run(lambda d: got.append(d.table), until_complete=run_id), 240)
    finally:
        await worker.stop()
    latent = LocalizationTable.concat(got)
    np.testing.assert_array_equal(np.sort(latent["particle"]), np.arange(N_PARTICLES))
    values = np.column_stack([latent[f"latent_{i}"] for i in range(SETTINGS.config.latent_dim)])
    assert np.isfinite(values).all()
    order = np.argsort(latent["particle"])
    np.testing.assert_allclose(latent["true_radius_nm"][order], simulated.truth["radius_nm"])
    assert np.isfinite(latent["radius_nm"]).all()  # model-based estimate (kind from the set)

    events = await run_events(run_id, "vae")
    texts = [e.message for e in events]
    skipped = next(t for t in texts if "skipped" in t)
    assert "1000 (" in skipped and "1001 (" in skipped and "non-finite" in skipped
    assert any(e.seq > 100 and "epoch 1 of 2" in e.message for e in events)
    done = next(e for e in events if "embedded" in e.message)
    assert done.done == N_PARTICLES

    names = {a.name for a in await bus.artefacts.list()}
    assert f"vae/{run_id}/model.pt" in names
    assert {f"vae/{run_id}/report/report.html", f"vae/{run_id}/report/latent.csv"} <= names
    with tempfile.TemporaryDirectory() as tmp:
        path = await bus.artefacts.get_file(f"vae/{run_id}/model.pt", Path(tmp) / "m.pt")
        trained = TrainedVae.load(path)
    # the stored model reproduces the published latent coordinates
    _, _, again = embed_table(trained, simulated.localizations)
    np.testing.assert_allclose(again, values[order], rtol=1e-4, atol=1e-5)


async def test_run_without_a_vae_step_is_not_processed(bus, run_id, simulated, run_events):
    spec = run_pb2.RunSpec(run_id=run_id, steps=[run_pb2.PipelineStep(name="cluster")])
    await bus.runs.create(spec)
    await bus.publish_particles(run_id, simulated.localizations, 0, particle_kind="npc2d")
    await bus.publish_end_of_acquisition(run_id, {"particles": 0})
    worker = VaeWorker(bus, SETTINGS, durable=f"vae-{run_id}", run_id=run_id)
    await worker.start()
    await asyncio.sleep(3)
    await worker.stop()
    assert await run_events(run_id, "vae") == []


async def test_grpc_fit_then_embed_and_invalid_requests(bus, simulated):
    server = await create_server(
        [(vae_pb2_grpc.add_VaeServicer_to_server, VaeService(bus.artefacts, SETTINGS))],
        service_names=["pointillist.v1.Vae"],
    )
    particles = particles_to_proto(
        with_bad_particles(simulated.localizations),
        run_id="g1",
        truth=simulated.truth,
        particle_kind="npc2d",
    )
    try:
        async with channel(server.address) as chan:
            stub = vae_pb2_grpc.VaeStub(chan)
            params = struct_pb2.Struct()
            params.update({"epochs": 1})
            fit = await stub.Fit(
                vae_pb2.FitRequest(particles=particles, params=params, name="vae/test-g1")
            )
            assert fit.model_artefact == "vae/test-g1/model.pt" and not fit.report_artefacts
            assert len(fit.history) == 1 and fit.history[0].epoch == 1
            assert {s.particle for s in fit.skipped} == {1000, 1001}
            fitted = LocalizationTable.from_proto(fit.latent)
            assert len(fitted) == N_PARTICLES and "true_radius_nm" in fitted.columns

            embedded = await stub.Embed(
                vae_pb2.EmbedRequest(particles=particles, model_artefact=fit.model_artefact)
            )
            again = LocalizationTable.from_proto(embedded.latent)
            np.testing.assert_allclose(again["latent_0"], fitted["latent_0"], rtol=1e-4)
            assert len(embedded.skipped) == 2

            unknown = struct_pb2.Struct()
            unknown.update({"epochz": 1})
            bad = {
                grpc.StatusCode.INVALID_ARGUMENT: [
                    stub.Embed(vae_pb2.EmbedRequest(particles=particles)),
                ],
                grpc.StatusCode.NOT_FOUND: [
                    stub.Embed(vae_pb2.EmbedRequest(particles=particles, model_artefact="nope"))
                ],
            }
            for code, calls in bad.items():
                for call in calls:
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await call
                    assert err.value.code() == code, err.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Fit(vae_pb2.FitRequest(particles=particles, params=unknown))
            assert "epochz" in err.value.details()
    finally:
        await server.shutdown(grace=1)
