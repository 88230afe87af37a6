"""Typed domain errors. Their message is written for the artist who will read it."""


class RestyleError(Exception):
    """Base class: anything the user should see as a clear, single-line error."""


class UnknownStyleError(RestyleError):
    pass


class InvalidImageError(RestyleError):
    pass


class JobCancelled(RestyleError):
    def __init__(self, message: str = "Cancelled: nothing was changed") -> None:
        super().__init__(message)


class WorkerDied(RestyleError):
    """The inference process exited (crash, kill, out of memory) while it had work."""


class WorkerFailed(RestyleError):
    """The inference process reported an error for a job; the message is forwarded."""


class DeviceUnavailable(RestyleError):
    pass


class UnsafeModelFile(RestyleError):
    """A model file whose unpickling would run code or build arbitrary objects."""


class UnsupportedModel(RestyleError):
    """A file that matches none of the supported architectures."""


class DownloadError(RestyleError):
    """A model download that did not complete; the message says what to do next."""


class OnlineAccessDisabled(DownloadError):
    pass


class ModelNotFound(DownloadError):
    pass


class NetworkUnavailable(DownloadError):
    pass


class ChecksumMismatch(DownloadError):
    pass


class NotAModelFile(DownloadError):
    """A downloaded or installed file that is not a loadable model of the expected kind."""


class TruncatedDownload(DownloadError):
    pass


class DiskFull(DownloadError):
    pass


class DownloadCancelled(DownloadError):
    pass


class WorkerHung(WorkerDied):
    """The inference process stopped answering (stopped, deadlocked) and was killed."""


class TemporaryFolderFull(RestyleError):
    """The job's arrays could not be written to the temporary folder."""


class ProtocolError(RestyleError, ValueError):
    """A message between Blender and the worker that is not what ml.runtime.protocol says (not JSON, a missing or
    mistyped field); a ValueError too, so a reader that skips bad lines keeps doing so."""


def _named(name: str) -> type[RestyleError] | None:
    """The RestyleError subclass called ``name`` (those of other ml modules included, once imported)."""
    pending: list[type[RestyleError]] = [RestyleError]
    while pending:
        kind = pending.pop(0)
        if kind.__name__ == name:
            return kind
        pending.extend(kind.__subclasses__())
    return None


_REMOTE: dict[type[RestyleError], type[RestyleError]] = {}


def remote(name: str, message: str) -> RestyleError:
    """A failure the worker reported as (class name, message), raised again on Blender's side as that
    class. It is a WorkerFailed as well, so a caller can still tell "the worker said so" from a local
    error; a name this side does not know (a bug in the worker, another version) is a plain WorkerFailed."""
    kind = _named(name)
    if kind is None or issubclass(kind, WorkerFailed) or issubclass(WorkerFailed, kind):  # RestyleError itself
        return (kind if kind is not None and issubclass(kind, WorkerFailed) else WorkerFailed)(message)
    if kind not in _REMOTE:
        _REMOTE[kind] = type(kind.__name__, (kind, WorkerFailed), {"__module__": kind.__module__,
                                                                  "__qualname__": kind.__qualname__})
    try:
        return _REMOTE[kind](message)
    except TypeError:  # a class whose constructor wants more than a message
        return WorkerFailed(message)
