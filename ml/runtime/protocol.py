"""The messages between Blender's process and the worker: one JSON object per line.

Requests (``Op``, to the worker's stdin) are exactly the ones the worker serves:

- ``ping``: a round trip (``PingRequest``); answered by ``pong``.
- ``run``: restyle images (``RunRequest``); answered by ``progress``, ``item_done`` or
  ``item_failed`` per image, then ``done``, ``cancelled`` or ``error``.
- ``depth``: depth maps of photos (``DepthRequest``); answered like ``run``.
- ``inspect``: which architecture a model file holds (``InspectRequest``); answered by
  ``inspected`` or ``error`` (both carry the request's id).
- ``learn``: Learn Style from Images (its fields: ml/training/job.py); answered by
  ``progress``, ``learn_preview``, ``learned``, then ``done``, ``cancelled`` or ``error``.
- ``cancel``: stop a job (``CancelRequest``); read at once, even while a job runs.
- ``shutdown``: stop the worker.

Events (``Event``, from the worker's stdout): ready, heartbeat (every second, busy or idle:
the client's liveness check), pong, progress, item_done, item_failed, done, cancelled, error,
inspected, learn_preview and learned. A failure crosses as the name of its ml.errors class and
its message (``error``/``message``) and is raised again as that class on the client
(:func:`raise_failure`). Big arrays never travel here: they are .npy files in the job's own
temporary folder.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from .. import errors
from ..options import Device, Precision, RestyleOptions, choice

Message = dict[str, Any]


class Op(StrEnum):
    PING = "ping"
    RUN = "run"
    DEPTH = "depth"
    INSPECT = "inspect"
    LEARN = "learn"
    CANCEL = "cancel"
    SHUTDOWN = "shutdown"


class Event(StrEnum):
    READY = "ready"
    HEARTBEAT = "heartbeat"
    PONG = "pong"
    PROGRESS = "progress"
    ITEM_DONE = "item_done"
    ITEM_FAILED = "item_failed"
    DONE = "done"
    CANCELLED = "cancelled"
    ERROR = "error"
    INSPECTED = "inspected"
    LEARN_PREVIEW = "learn_preview"
    LEARNED = "learned"


ProtocolError = errors.ProtocolError


# -- requests ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One image of a job: its input and output .npy files in the job's folder."""

    id: str
    input: str
    output: str


@dataclass(frozen=True)
class PingRequest:
    op: ClassVar[Op] = Op.PING
    sent: float | None = None


@dataclass(frozen=True)
class RunRequest:
    """Restyle ``items`` with ``style`` (a built-in id, or the model ``files`` by role)."""

    op: ClassVar[Op] = Op.RUN
    job: str
    items: tuple[Item, ...]
    style: str
    options: RestyleOptions = field(default_factory=RestyleOptions)
    files: Mapping[str, str] = field(default_factory=dict)
    style_weight: float = 1.0
    style_image: str | None = None  # .npy of the arbitrary style's image
    threads: int = 0


@dataclass(frozen=True)
class DepthRequest:
    """Depth maps of ``items`` with a Depth Anything V2 file (``files["model"]``), or the built-in model."""

    op: ClassVar[Op] = Op.DEPTH
    job: str
    items: tuple[Item, ...]
    files: Mapping[str, str] = field(default_factory=dict)
    max_depth: float | None = None  # metres of a metric head; None: relative depth
    device: Device = Device.AUTO
    precision: Precision = Precision.AUTO
    threads: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", choice(Device, self.device))
        object.__setattr__(self, "precision", choice(Precision, self.precision))


@dataclass(frozen=True)
class InspectRequest:
    op: ClassVar[Op] = Op.INSPECT
    request: str
    path: str


@dataclass(frozen=True)
class LearnRequest:
    """Learn Style from Images; ml/training/job.py reads its fields from ``fields``."""

    op: ClassVar[Op] = Op.LEARN
    job: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CancelRequest:
    op: ClassVar[Op] = Op.CANCEL
    job: str


@dataclass(frozen=True)
class ShutdownRequest:
    op: ClassVar[Op] = Op.SHUTDOWN


Request = (PingRequest | RunRequest | DepthRequest | InspectRequest | LearnRequest | CancelRequest
           | ShutdownRequest)
REQUESTS: dict[Op, type] = {kind.op: kind for kind in (PingRequest, RunRequest, DepthRequest, InspectRequest,
                                                         LearnRequest, CancelRequest, ShutdownRequest)}


def request_message(request: Request) -> Message:
    """The JSON object of a request."""
    if isinstance(request, LearnRequest):
        return {**request.fields, "op": Op.LEARN.value, "job": request.job}
    message: Message = {"op": request.op.value}
    for spec in dataclasses.fields(request):
        value = getattr(request, spec.name)
        if isinstance(value, RestyleOptions):
            value = value.to_wire()
        elif isinstance(value, tuple):
            value = [dataclasses.asdict(item) for item in value]
        elif isinstance(value, StrEnum):
            value = value.value
        elif isinstance(value, Mapping):
            value = dict(value)
        message[spec.name] = value
    return message


def parse_request(message: Mapping[str, Any]) -> Request:
    """The typed request of a decoded message; a missing, unknown or mistyped field is a ProtocolError
    naming it (the worker answers it as an error and stays up)."""
    try:
        op = choice(Op, message.get("op"))
    except ValueError:
        raise ProtocolError(f"unknown request '{message.get('op')}'") from None
    kind = REQUESTS[op]
    if kind is LearnRequest:
        return LearnRequest(job=_text(message, "job"), fields=dict(message))
    names = {spec.name: spec for spec in dataclasses.fields(kind)}
    missing = [name for name, spec in names.items() if name not in message
               and spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING]
    if missing:
        raise ProtocolError(f"the '{op}' request has no {', '.join(missing)}")
    values: dict[str, Any] = {}
    try:
        for name in names:
            if name not in message:
                continue
            raw = message[name]
            if name == "items":
                values[name] = tuple(_item(entry) for entry in _list(raw, name))
            elif name == "options":
                values[name] = RestyleOptions.from_wire(raw if raw is not None else {})
            elif name == "files":
                if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
                    raise ProtocolError("'files' must map roles to paths")
                values[name] = dict(raw)
            elif name in ("job", "request", "style", "path"):
                values[name] = str(raw)
            elif name == "threads":
                values[name] = int(raw)
            elif name in ("style_weight", "sent", "max_depth"):
                values[name] = None if raw is None else float(raw)
            else:
                values[name] = raw
        return kind(**values)  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"the '{op}' request is malformed: {exc}") from exc


def _text(message: Mapping[str, Any], name: str) -> str:
    if name not in message:
        raise ProtocolError(f"the request has no {name}")
    return str(message[name])


def _list(raw: object, name: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ProtocolError(f"'{name}' must be a list")
    return raw


def _item(raw: object) -> Item:
    if not isinstance(raw, Mapping) or not all(isinstance(raw.get(k), str) for k in ("id", "input", "output")):
        raise ProtocolError("each item needs an id, an input and an output path")
    return Item(raw["id"], raw["input"], raw["output"])


# -- failures ----------------------------------------------------------------------------
def failure_fields(exc: BaseException) -> Message:
    """How a failure crosses: the name of its ml.errors class and its message. Anything that is no
    RestyleError (a bug, a torch error) crosses as WorkerFailed, named by its type."""
    if isinstance(exc, errors.RestyleError):
        return {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, (ValueError, TypeError, KeyError, OSError)):  # bad input or a file: the message says it
        return {"error": errors.WorkerFailed.__name__, "message": str(exc)}
    return {"error": errors.WorkerFailed.__name__, "message": f"{type(exc).__name__}: {exc}"}


def rebuilt_failure(event: Mapping[str, Any]) -> errors.RestyleError:
    """The exception an ``error`` event (or a failed item) stands for, as the class the worker raised."""
    return errors.remote(str(event.get("error") or ""), str(event.get("message") or "the worker gave no reason"))


# -- lines -------------------------------------------------------------------------------
def encode(message: Message | Request) -> str:
    if not isinstance(message, dict):
        message = request_message(message)
    return json.dumps(message, separators=(",", ":")) + "\n"


def decode(line: str) -> Message:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"protocol message is not JSON: {line[:80]!r}") from exc
    if not isinstance(message, dict):
        raise ProtocolError(f"protocol message is not an object: {line[:80]!r}")
    return message
