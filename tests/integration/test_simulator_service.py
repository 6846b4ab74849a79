"""The simulator service over a real gRPC server and a real NATS (JetStream) server."""

import asyncio

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2

from pointillist.core.bus import frames_from_proto
from pointillist.core.errors import InvalidInput
from pointillist.core.rpc import channel, create_server
from pointillist.core.table import LocalizationTable
from pointillist.simulator.frames import FrameSimConfig, simulate_frames
from pointillist.simulator.service import SimulatorService
from pointillist.v1 import run_pb2, simulator_pb2, simulator_pb2_grpc


def _struct(**params) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(params)
    return s


@pytest.fixture
async def simulator(bus):
    servicer = SimulatorService(bus)
    server = await create_server(
        [(simulator_pb2_grpc.add_SimulatorServicer_to_server, servicer)],
        service_names=["pointillist.v1.Simulator"],
    )
    async with channel(server.address) as chan:
        yield simulator_pb2_grpc.SimulatorStub(chan)
    await server.shutdown(grace=1)


async def test_acquisition_streams_every_frame_with_truth_and_ends(simulator, bus, run_id):
    params = {"n_frames": 25, "height_px": 32, "width_px": 32}
    request = simulator_pb2.AcquisitionRequest(
        run_id=run_id,
        frames_per_batch=10,
        frame_rate_hz=500,
        publish_ground_truth=True,
        frames=simulator_pb2.SimulationRequest(params=_struct(**params), seed=3),
    )
    status = await simulator.StartAcquisition(request)
    assert status.state == run_pb2.RUN_STATE_RUNNING and status.run_id == run_id

    frames, truth = {}, []

    async def on_frames(d):
        frames[d.message.first_frame] = d.frames

    async def on_truth(d):
        truth.append(d.table)

    async with (
        bus.consumer("frames", f"f-{run_id}", run_id=run_id) as fc,
        bus.consumer("truth", f"t-{run_id}", run_id=run_id) as tc,
    ):
        await asyncio.wait_for(
            asyncio.gather(
                fc.run(on_frames, until_complete=run_id), tc.run(on_truth, until_complete=run_id)
            ),
            timeout=60,
        )

    expected = simulate_frames(FrameSimConfig.from_params(params), 3)
    got = np.concatenate([frames[k] for k in sorted(frames)])
    np.testing.assert_array_equal(got, expected.frames)  # same seed, same frames, in order
    assert sorted(frames) == [0, 10, 20]
    assert sum(len(t) for t in truth) == len(expected.truth)
    final = await simulator.GetRun(simulator_pb2.RunRequest(run_id=run_id))
    assert final.state == run_pb2.RUN_STATE_SUCCEEDED and final.progress == 1.0
    stored = await bus.runs.get(run_id)
    assert stored.counters["done"] == 25


async def test_dataset_published_as_particles(simulator, bus, run_id):
    request = simulator_pb2.DatasetRequest(
        run_id=run_id,
        kind="particles",
        simulation=simulator_pb2.SimulationRequest(
            params=_struct(kind="npc2d", n_particles=20), seed=1
        ),
    )
    await simulator.PublishDataset(request)
    got = []

    async def on_particles(d):
        got.append(d.message)

    async with bus.consumer("particles", f"p-{run_id}", run_id=run_id) as pc:
        await asyncio.wait_for(pc.run(on_particles, until_complete=run_id), timeout=30)
    particles = {
        int(p) for m in got for p in LocalizationTable.from_proto(m.localizations)["particle"]
    }
    assert particles == set(range(20))


async def test_direct_rpcs(simulator):
    frames = [
        m
        async for m in simulator.SimulateFrames(
            simulator_pb2.SimulationRequest(
                params=_struct(n_frames=12, chunk_frames=5, height_px=16, width_px=16), seed=2
            )
        )
    ]
    assert [m.first_frame for m in frames] == [0, 5, 10]
    assert frames_from_proto(frames[0]).shape == (5, 16, 16)
    rings = await simulator.SimulateClusters(
        simulator_pb2.SimulationRequest(params=_struct(scenario="ring"), seed=1)
    )
    table = LocalizationTable.from_proto(rings)
    assert table["label"].max() >= 60
    views = await simulator.SimulateProjections(
        simulator_pb2.SimulationRequest(params=_struct(n_views=5), seed=1)
    )
    assert views.kind == "torus" and len(views.truth) > 0


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"n_frames": -1}, "n_frames"),
        ({"bogus": 1}, "bogus"),
    ],
)
async def test_bad_requests_are_invalid_argument(simulator, params, fragment):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await simulator.StartAcquisition(
            simulator_pb2.AcquisitionRequest(
                frames=simulator_pb2.SimulationRequest(params=_struct(**params))
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in err.value.details() and "Traceback" not in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await simulator.GetRun(simulator_pb2.RunRequest(run_id="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_service_error_types_stay_project_errors():
    with pytest.raises(InvalidInput):
        FrameSimConfig.from_params({"psf": "donut"})


async def test_a_registered_run_spec_is_kept_and_a_bare_run_records_its_simulation(
    simulator, bus, run_id
):
    spec = run_pb2.RunSpec(run_id=run_id, steps=[run_pb2.PipelineStep(name="reconstruct")])
    spec.source.simulation.kind = "projections"
    spec.source.simulation.seed = 9
    await bus.runs.create(spec)
    request = simulator_pb2.DatasetRequest(
        run_id=run_id,
        kind="projections",
        simulation=simulator_pb2.SimulationRequest(params=_struct(n_views=3), seed=9),
    )
    await simulator.PublishDataset(request)
    stored = await bus.runs.get(run_id)
    assert [s.name for s in stored.spec.steps] == ["reconstruct"]
    assert stored.spec.source.simulation.seed == 9

    bare = f"{run_id}-bare"
    request = simulator_pb2.DatasetRequest(
        run_id=bare,
        kind="projections",
        simulation=simulator_pb2.SimulationRequest(params=_struct(n_views=3), seed=4),
    )
    await simulator.PublishDataset(request)
    stored = await bus.runs.get(bare)
    assert stored.spec.source.simulation.kind == "projections"
    assert stored.spec.source.simulation.seed == 4
    assert dict(stored.spec.source.simulation.params)["n_views"] == 3
