"""The messages between Blender's process and the worker: one JSON object per line.

Requests (to the worker's stdin):  {"op": "ping"} | {"op": "run", ...} | {"op": "cancel", "job": id}
                                   | {"op": "shutdown"}
Events (from the worker's stdout): ready, pong, progress, item_done, item_failed, done,
                                   cancelled, error, inspected, and heartbeat (every second,
                                   busy or idle: the client's liveness check). Big arrays never
                                   travel here: they are .npy files in the job's own temporary folder.
"""

from __future__ import annotations

import json
from typing import Any

Message = dict[str, Any]


def encode(message: Message) -> str:
    return json.dumps(message, separators=(",", ":")) + "\n"


def decode(line: str) -> Message:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"protocol message is not an object: {line[:80]!r}")
    return message
