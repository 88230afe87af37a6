"""ml/runtime/protocol.py: typed requests shared by the client and the worker, the ops the docstring names
are the ops the worker serves, and one error policy (a failure crosses as its class and message)."""

import json
import re

import pytest

from ml import errors
from ml.options import Device, Precision, RestyleOptions, Seamless
from ml.runtime import protocol
from ml.runtime.protocol import (
    CancelRequest,
    DepthRequest,
    Event,
    InspectRequest,
    Item,
    LearnRequest,
    Op,
    PingRequest,
    RunRequest,
    ShutdownRequest,
)


def test_the_docstring_lists_exactly_the_ops_the_worker_serves():
    worker = pytest.importorskip("ml.runtime.worker")
    listed = set(re.findall(r"^- ``(\w+)``:", protocol.__doc__, flags=re.MULTILINE))
    handled = {op.value for op in worker.Worker(out=None).handlers}  # type: ignore[arg-type]
    # cancel is read by the request reader (it must arrive mid-job) and shutdown by serve()
    assert listed == handled | {Op.CANCEL.value, Op.SHUTDOWN.value} == {op.value for op in Op}


def test_the_docstring_lists_every_event():
    for event in Event:
        assert event.value in protocol.__doc__, event


REQUESTS = [
    PingRequest(1.5),
    RunRequest("7", (Item("a", "/t/in0.npy", "/t/out0.npy"),), "oil",
               RestyleOptions(device=Device.CPU, precision=Precision.FULL, tile_size=64, seamless=Seamless.OFF),
               {"model": "/m/x.pth"}, 0.5, "/t/style.npy", 2),
    DepthRequest("8", (Item("p", "/t/in0.npy", "/t/out0.npy"),), {"model": ""}, 20.0, Device.CPU, Precision.FULL),
    InspectRequest("inspect-3", "/m/x.pth"),
    LearnRequest("learn-4", {"name": "Mine", "options": {"steps": 10}}),
    CancelRequest("7"),
    ShutdownRequest(),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_every_request_crosses_as_one_json_line_and_comes_back_typed(request_):
    line = protocol.encode(request_)
    assert line.endswith("\n") and "\n" not in line[:-1]
    message = protocol.decode(line)
    assert message["op"] == request_.op.value
    again = protocol.parse_request(message)
    if isinstance(request_, LearnRequest):  # its fields travel flat, as ml/training/job.py reads them
        assert again.job == request_.job and again.fields["name"] == "Mine"
    else:
        assert again == request_


def test_a_plain_options_mapping_is_read_as_typed_options():
    message = {"op": "run", "job": "1", "style": "toon", "items": [], "options": {"seamless": "OFF", "tile_size": 64}}
    request = protocol.parse_request(message)
    assert isinstance(request, RunRequest)
    assert request.options.seamless is Seamless.OFF and request.options.tile_size == 64


@pytest.mark.parametrize(("message", "words"), [
    ({"op": "run", "job": "99", "style": "toon"}, "has no items"),
    ({"op": "dance"}, "unknown request 'dance'"),
    ({"op": "run", "job": "1", "style": "toon", "items": "x"}, "'items' must be a list"),
    ({"op": "run", "job": "1", "style": "toon", "items": [{"id": "a"}]}, "needs an id, an input and an output"),
    ({"op": "run", "job": "1", "style": "toon", "items": [], "options": {"tile": 5}}, "unknown RestyleOptions"),
    ({"op": "inspect", "request": "r"}, "has no path"),
])
def test_malformed_requests_are_protocol_errors_naming_what_is_wrong(message, words):
    with pytest.raises(errors.ProtocolError, match=re.escape(words)):
        protocol.parse_request(message)


def test_a_line_that_is_not_json_is_a_protocol_error_and_still_a_value_error():
    # the readers skip such lines by catching ValueError (stray output on a pipe)
    with pytest.raises(errors.ProtocolError):
        protocol.decode("Traceback (most recent call last):")
    with pytest.raises(ValueError, match="not an object"):
        protocol.decode("[1, 2]")


@pytest.mark.parametrize("kind", [errors.UnknownStyleError, errors.UnsupportedModel, errors.UnsafeModelFile,
                                  errors.ChecksumMismatch, errors.InvalidImageError, errors.DeviceUnavailable])
def test_a_domain_error_in_the_worker_is_raised_again_as_its_own_class(kind):
    fields = protocol.failure_fields(kind("the reason"))
    event = json.loads(json.dumps({"event": "error", "job": "1", **fields}))  # it crosses as JSON
    rebuilt = protocol.rebuilt_failure(event)
    assert isinstance(rebuilt, kind) and isinstance(rebuilt, errors.WorkerFailed)
    assert type(rebuilt).__name__ == kind.__name__ and str(rebuilt) == "the reason"
    with pytest.raises(kind, match="the reason"):
        raise rebuilt


def test_errors_defined_outside_errors_py_cross_too():
    from ml.models.custom import CustomStyleMissing

    rebuilt = protocol.rebuilt_failure(protocol.failure_fields(CustomStyleMissing("gone")))
    assert isinstance(rebuilt, CustomStyleMissing)


def test_the_base_class_itself_crosses_as_worker_failed():
    # RestyleError raised as such (no subclass) in the worker: still a RestyleError, and a WorkerFailed
    rebuilt = protocol.rebuilt_failure(protocol.failure_fields(errors.RestyleError("Pick a style image")))
    assert type(rebuilt) is errors.WorkerFailed and str(rebuilt) == "Pick a style image"


def test_a_bug_in_the_worker_crosses_as_worker_failed_named_by_its_type():
    rebuilt = protocol.rebuilt_failure(protocol.failure_fields(ZeroDivisionError("division by zero")))
    assert type(rebuilt) is errors.WorkerFailed and str(rebuilt) == "ZeroDivisionError: division by zero"
    # a bad value or a file problem keeps its own message, which says what is wrong
    assert str(protocol.rebuilt_failure(protocol.failure_fields(OSError("disk gone")))) == "disk gone"


def test_an_unknown_error_name_from_another_version_is_worker_failed():
    rebuilt = protocol.rebuilt_failure({"event": "error", "error": "SomethingNew", "message": "m"})
    assert type(rebuilt) is errors.WorkerFailed and str(rebuilt) == "m"
    assert type(protocol.rebuilt_failure({"event": "error", "message": "old worker"})) is errors.WorkerFailed


@pytest.fixture(scope="module")
def worker_client():
    from pathlib import Path

    from ml.runtime.client import WorkerClient

    client = WorkerClient(str(Path(__file__).resolve().parents[2]), threads=1)
    client.start()
    yield client
    client.shutdown()


def test_the_real_worker_raises_an_unknown_style_as_unknown_style_error(worker_client):
    """Before: every worker failure came back as a WorkerFailed whose text had to be read to tell what it was."""
    from tests.ml.synthetic import photo_like

    with pytest.raises(errors.UnknownStyleError, match="Unknown style 'nope'"):
        worker_client.submit("nope", RestyleOptions(), [("a", photo_like(8, 8))]).wait()
    pid = worker_client.pid
    with pytest.raises(errors.UnsupportedModel):
        worker_client.inspect(__file__)  # a Python file is no model
    assert worker_client.ping() < 30 and worker_client.pid == pid  # the same warm worker carries on


def test_the_real_worker_answers_a_malformed_request_with_a_typed_error(worker_client):
    worker_client._send(op="run", job="99", style="toon")
    event = worker_client._answer(lambda e: e.get("event") == Event.ERROR and e.get("job") == "99", "test", 30.0)
    assert event["error"] == "ProtocolError" and "has no items" in event["message"]
