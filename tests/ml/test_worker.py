import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from ml.errors import JobCancelled, WorkerDied, WorkerFailed
from ml.options import RestyleOptions
from ml.runtime.client import WorkerClient
from tests.ml.synthetic import photo_like

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client():
    worker = WorkerClient(str(ROOT), threads=1)
    worker.start()
    yield worker
    worker.shutdown()


def test_worker_restyles_several_images_and_stays_warm(client):
    pid = client.pid
    images = [("a", photo_like(64, 80)), ("b", photo_like(30, 20, seed=1)[..., :1])]
    results = client.submit("toon", RestyleOptions(tile_size=64), images).wait()
    assert results["a"].array.shape == (64, 80, 3) and results["b"].array.shape == (30, 20, 1)
    assert results["a"].info["tiles"] == 2
    client.submit("pixel", RestyleOptions(), images[:1]).wait()
    assert client.pid == pid  # the same process served both jobs
    assert client.ping() < 1.0


def test_job_files_are_removed_after_the_job(client):
    job = client.submit("pixel", RestyleOptions(), [("a", photo_like(16, 16))])
    job.wait()
    assert not os.path.exists(job.folder)


def test_bad_item_fails_alone(client):
    items = [("bad", np.full((4, 4, 3), np.nan, np.float32)), ("ok", photo_like(8, 8))]
    results = client.submit("toon", RestyleOptions(), items).wait()
    assert "NaN" in results["bad"].error and results["ok"].array is not None


def test_unknown_style_is_reported(client):
    with pytest.raises(WorkerFailed, match="Unknown style 'nope'"):
        client.submit("nope", RestyleOptions(), [("a", photo_like(8, 8))]).wait()


def test_cancel_stops_at_once(client):
    # Big enough that the worker cannot finish between its first progress and the kill, even when
    # this process waits for a core on a loaded machine (512 px could: the job then ended normally).
    job = client.submit("oil", RestyleOptions(tile_size=64), [("a", photo_like(1536, 1536))])
    while job.fraction == 0.0:
        job.poll()
    started = time.perf_counter()
    job.cancel()
    with pytest.raises(JobCancelled):
        job.wait()
    assert time.perf_counter() - started < 2.0
    assert not os.path.exists(job.folder)
    client.submit("pixel", RestyleOptions(), [("a", photo_like(8, 8))]).wait()  # usable afterwards


def test_closing_an_unfinished_job_stops_the_worker_on_it(client):
    # Big enough that the worker cannot finish between its first progress and the kill, even when
    # this process waits for a core on a loaded machine (512 px could: the job then ended normally).
    job = client.submit("oil", RestyleOptions(tile_size=64), [("a", photo_like(1536, 1536))])
    while job.fraction == 0.0:
        job.poll()
    job.close()  # e.g. a modal operator torn down while the job still runs
    started = time.perf_counter()
    client.submit("pixel", RestyleOptions(), [("a", photo_like(8, 8))]).wait()
    # Without the cancel the worker would finish the 512 px oil job first (many seconds).
    assert time.perf_counter() - started < 3.0


def test_killed_worker_is_a_clear_error_and_the_next_job_restarts_it(client):
    # Big enough that the worker cannot finish between its first progress and the kill, even when
    # this process waits for a core on a loaded machine (512 px could: the job then ended normally).
    job = client.submit("oil", RestyleOptions(tile_size=64), [("a", photo_like(1536, 1536))])
    while job.fraction == 0.0:
        job.poll()
    os.kill(client.pid, signal.SIGKILL)
    with pytest.raises(WorkerDied, match="stopped in the middle of the job .signal 9."):
        job.wait()
    assert client.submit("pixel", RestyleOptions(), [("a", photo_like(8, 8))]).wait()["a"].array is not None


def test_a_python_without_torch_gets_a_specific_message(tmp_path):
    (tmp_path / "torch.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\")\n")
    client = WorkerClient(str(ROOT))
    env = client._environment()
    # Shadow torch with a module that fails the way a missing torch does.
    client._environment = lambda: {**env, "PYTHONPATH": f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"}
    with pytest.raises(WorkerDied, match="PyTorch is not available"):
        client.start()


def test_a_worker_that_cannot_start_is_reported(tmp_path):
    broken = WorkerClient(str(tmp_path), python="/bin/false")  # an interpreter that exits at once
    with pytest.raises(WorkerDied, match="while starting"):
        broken.start()


def test_worker_runs_a_model_from_its_file_and_inspects_files(client, tmp_path):
    from tests.ml import checkpoints

    path = checkpoints.save(checkpoints.cyclegan_state(blocks=6), tmp_path / "g.pth")
    info = client.inspect(str(path))
    assert info["arch"] == "cyclegan" and info["params"] > 7_000_000
    out = client.submit("custom:g", RestyleOptions(tile_size=64), [("a", photo_like(80, 72))],
                        files={"model": str(path)}).wait()
    assert out["a"].array.shape == (80, 72, 3)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a model")
    with pytest.raises(WorkerFailed, match="junk.pth is not a PyTorch model file"):
        client.inspect(str(junk))


@pytest.mark.parametrize("style_channels", [4, 1], ids=["rgba-style", "grey-style"])
def test_adain_takes_rgba_and_grey_style_images(client, tmp_path, style_channels):
    from tests.ml import checkpoints

    parts = checkpoints.adain_states()
    files = {role: str(checkpoints.save(state, tmp_path / f"{role}.pth")) for role, state in parts.items()}
    style = photo_like(48, 40, seed=4)
    style = np.concatenate([style, np.ones((48, 40, 1), np.float32)], 2) if style_channels == 4 else style[..., :1]
    image = photo_like(64, 64)
    options = RestyleOptions()
    strong = client.submit("adain", options, [("a", image)], files=files, style_image=style, style_weight=1.0).wait()
    none = client.submit("adain", options, [("a", image)], files=files, style_image=style, style_weight=0.0).wait()
    assert strong["a"].array.shape == (64, 64, 3)
    assert np.abs(strong["a"].array - none["a"].array).mean() > 0.001  # the weight matters


def test_adain_without_a_style_image_is_a_clear_error(client, tmp_path):
    from tests.ml import checkpoints

    parts = checkpoints.adain_states()
    files = {role: str(checkpoints.save(state, tmp_path / f"{role}.pth")) for role, state in parts.items()}
    with pytest.raises(WorkerFailed, match="Pick a style image"):
        client.submit("adain", RestyleOptions(), [("a", photo_like(16, 16))], files=files).wait()


def test_worker_estimates_depth_with_a_published_layout_checkpoint(client, tmp_path):
    import torch

    from ml.networks.depth_anything import CONFIGS, DepthAnythingV2
    from tests.ml.checkpoints import seeded

    path = tmp_path / "depth_anything_v2_vits.pth"
    torch.save(seeded(DepthAnythingV2(CONFIGS["vits"])).state_dict(), path)
    image = photo_like(45, 60)
    out = client.submit_depth([("photo", image)], str(path)).wait()
    depth = out["photo"].array
    assert depth.shape == (45, 60) and np.isfinite(depth).all() and (depth >= 0).all()
    metric = client.submit_depth([("photo", image)], str(path), max_depth=20.0).wait()["photo"].array
    assert metric.max() <= 20.0


def test_a_photo_whose_depth_fails_fails_alone_and_the_next_one_is_estimated(client, tmp_path):
    """One photo's failure was the whole job's ERROR: photo import lost every photo for one."""
    import torch

    from ml.networks.depth_anything import CONFIGS, DepthAnythingV2
    from tests.ml.checkpoints import seeded

    path = tmp_path / "depth_anything_v2_vits.pth"
    torch.save(seeded(DepthAnythingV2(CONFIGS["vits"])).state_dict(), path)
    job = client.submit_depth([("big", photo_like(480, 640)), ("gone", photo_like(45, 60)),
                               ("small", photo_like(45, 60, seed=2))], str(path))
    # While the worker estimates the first (about half a second at 518 x 686), the second's input goes bad.
    Path(job.items[1].input).write_bytes(b"not an array any more")
    out = job.wait()
    assert out["gone"].array is None and out["gone"].error  # its reason, for the import to name the photo
    assert out["big"].array.shape == (480, 640) and out["small"].array.shape == (45, 60)


def test_depth_network_input_follows_the_published_recipe():
    from ml.depth.anything import network_input_size

    assert network_input_size(480, 640) == (518, 686)  # short side 518, the nearest multiples of 14
    assert network_input_size(1000, 500) == (1036, 518)


def test_depth_requests_use_the_threads_preference(tmp_path):
    """Style jobs honoured the CPU threads preference and depth requests did not: a photo
    import took every core of a machine the user had asked to share."""
    import io

    import torch

    from ml.runtime.protocol import DepthRequest, Item
    from ml.runtime.worker import Worker

    image = tmp_path / "in.npy"
    np.save(image, photo_like(40, 56))
    before = torch.get_num_threads()
    worker = Worker(io.StringIO())
    try:
        torch.set_num_threads(2)
        worker.run_depth(DepthRequest("j", (Item("a", str(image), str(tmp_path / "out.npy")),), threads=1))
        assert torch.get_num_threads() == 1
        assert np.load(tmp_path / "out.npy").shape == (40, 56)
        torch.set_num_threads(2)
        worker.run_depth(DepthRequest("k", (Item("a", str(image), str(tmp_path / "out.npy")),), threads=0))
        assert torch.get_num_threads() == 2  # 0 leaves torch's choice alone
    finally:
        torch.set_num_threads(before)
