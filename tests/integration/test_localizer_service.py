"""The localizer over a real NATS (frames in, locs out) and over gRPC."""

import asyncio

import grpc
import numpy as np
import pytest

from pointillist.core.bus import frames_to_proto
from pointillist.core.frames import camera_to_proto
from pointillist.core.rpc import channel, create_server
from pointillist.core.table import LocalizationTable
from pointillist.localizer.engine import Engine
from pointillist.localizer.evaluation import evaluate
from pointillist.localizer.service import LocalizerService, LocalizerWorker
from pointillist.simulator.frames import FrameSimConfig, simulate_frames
from pointillist.v1 import localizer_pb2_grpc

PARAMS = {
    "n_frames": 30,
    "height_px": 48,
    "width_px": 48,
    "background_photons": 20,
    "emitters": {"density_per_um2": 8},
    "blinking": {"photons": 3000},
}


@pytest.fixture(scope="module")
def acquisition():
    config = FrameSimConfig.from_params(PARAMS)
    return simulate_frames(config, 11), camera_to_proto(config.camera)


async def test_bus_round_trip_frames_to_locs_and_dead_letter(bus, run_id, acquisition):
    result, camera = acquisition
    # a worker dedicated to this run, so it shares the test server with other consumers
    worker = LocalizerWorker(bus, Engine("mle"), durable=f"loc-{run_id}", run_id=run_id)
    await worker.start()
    try:
        for seq, start in enumerate(range(0, 30, 10)):
            await bus.publish_frames(
                run_id, result.frames[start : start + 10], seq, first_frame=start, camera=camera
            )
        bad = frames_to_proto(result.frames[:2], run_id=run_id, seq=3, first_frame=30)
        await bus.publish("frames", bad)  # no camera model: must be dead-lettered
        await bus.publish_end_of_acquisition(run_id, {"frames": 3})
        got: dict[int, LocalizationTable] = {}

        async def on_locs(d):
            got[d.seq] = d.table

        async with bus.consumer("locs", f"c-{run_id}", run_id=run_id) as c:
            await asyncio.wait_for(c.run(on_locs, idle_timeout=5), timeout=60)
    finally:
        await worker.stop()
    assert sorted(got) == [0, 1, 2]  # one output per valid input batch, none for the bad one
    locs = LocalizationTable.concat(got[s] for s in sorted(got))
    assert evaluate(locs, result.truth).jaccard > 0.6
    dead = await bus.js.subscribe(f"pnt.{run_id}.dead", ordered_consumer=True)
    msg = await dead.next_msg(timeout=10)
    assert "camera" in msg.headers["Pnt-Dead-Reason"]
    await dead.unsubscribe()


async def test_grpc_localize_stream(acquisition):
    result, camera = acquisition
    server = await create_server(
        [(localizer_pb2_grpc.add_LocalizerServicer_to_server, LocalizerService(Engine("mle")))],
        service_names=["pointillist.v1.Localizer"],
    )
    try:
        async with channel(server.address) as chan:
            stub = localizer_pb2_grpc.LocalizerStub(chan)

            async def requests():
                for seq, start in enumerate(range(0, 30, 15)):
                    yield frames_to_proto(
                        result.frames[start : start + 15], seq=seq, first_frame=start, camera=camera
                    )

            replies = [r async for r in stub.Localize(requests())]
            assert [r.seq for r in replies] == [0, 1]
            locs = LocalizationTable.concat(LocalizationTable.from_proto(r) for r in replies)
            assert evaluate(locs, result.truth).rmse_lateral_nm < 30

            async def bad():
                msg = frames_to_proto(np.zeros((2, 8, 8), np.uint16), camera=camera)
                msg.height = 9
                yield msg

            with pytest.raises(grpc.aio.AioRpcError) as err:
                _ = [r async for r in stub.Localize(bad())]
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "bytes" in err.value.details()
    finally:
        await server.shutdown(grace=1)
