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
