"""What every job shares: the services it needs from the preferences, the protocol the job
runner drives, and the blocking way to run a job to its end."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import bpy

from .. import preferences
from ..ml.errors import JobCancelled, RestyleError
from ..ml.models.store import ModelStore
from ..ml.runtime.client import Job as WorkerJob
from ..ml.runtime.client import WorkerClient, shared_client

OutcomeT = TypeVar("OutcomeT", covariant=True)
OptionsT = TypeVar("OptionsT")
POLL_INTERVAL_S = 0.02


def package_root() -> str:
    """The extension's folder: the worker runs its ``ml`` package from there."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Services:
    """Where models live and how the worker runs: read from the preferences once, on the main thread."""

    model_root: Path
    store: ModelStore
    threads: int = 0

    def client(self) -> WorkerClient:
        return shared_client(package_root(), threads=self.threads)


class InvalidOptions(RestyleError):
    """An option outside its range or choices (ml/options.py says which)."""


def checked(options: OptionsT) -> OptionsT:
    """``options.validated()``, its ValueError as a domain error with the same message."""
    try:
        return options.validated()  # type: ignore[attr-defined, no-any-return]
    except ValueError as exc:
        raise InvalidOptions(str(exc)) from None


def error_message(exc: BaseException) -> str:
    """The one line a user reads about a failed job, in the panel's report and in the command line's
    output alike (operators/jobs.py and cli.py both ask here, so the same failure reads the same).

    Domain errors speak for themselves; an OSError gives its reason and the file it concerns, not
    Python's ``[Errno 28] ...`` spelling; anything else is a defect and says so."""
    if isinstance(exc, RestyleError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        if not exc.filename:
            return reason
        name = os.fsdecode(exc.filename) if isinstance(exc.filename, bytes) else str(exc.filename)
        return f"{reason} ({name})"
    return f"unexpected {type(exc).__name__}: {exc}"


def is_defect(exc: BaseException) -> bool:
    """A failure that is no user error (a bug): its traceback belongs in the log."""
    return not isinstance(exc, (RestyleError, OSError))


def services_of(context: bpy.types.Context) -> Services:
    store, threads = preferences.job_settings(context)
    return Services(store.root, store, threads)


class RunningJob(Protocol):
    """What the job runner (operators/jobs.py) drives from a timer, and :func:`run_to_end` blocks on.
    Between steps it holds names, never RNA references."""

    @property
    def fraction(self) -> float: ...

    @property
    def text(self) -> str: ...

    def poll(self) -> bool:
        """Do the next bit of work; True once the work is done. Raises RestyleError (JobCancelled on cancel)."""

    def wait(self) -> None:
        """Block until the work is done; raises like poll()."""

    def cancel(self) -> None:
        """Ask the work to stop; poll() then raises JobCancelled (once a worker job in flight has stopped)."""

    def close(self) -> None:
        """Release what the job holds and remove what it made unless finish() kept it; safe to call twice."""


class Job(RunningJob, Protocol[OutcomeT]):
    """A long job in steps (jobs/*.py) whose results are built at the end."""

    def finish(self) -> OutcomeT:
        """Build the results from the finished work (all or nothing)."""


def stopping(cancelled: bool, worker_job: WorkerJob | None) -> bool:
    """For a job's poll(): whether a cancelled job is still stopping (poll() returns False).

    A worker job in flight is driven through its own acknowledge-or-kill path (ml/runtime/client.py
    Job.poll: the worker says it stopped, or is killed after the grace period), so Esc never
    leaves the worker computing for nobody while the next job queues behind it. JobCancelled is
    raised here once that has happened, or at once when no worker job is in flight."""
    if not cancelled:
        return False
    if worker_job is not None and not worker_job.finished and not worker_job.poll():
        return True
    raise JobCancelled()


def wait_by_polling(job: RunningJob) -> None:
    """wait() for jobs whose steps run in poll() on the calling thread."""
    while not job.poll():
        time.sleep(POLL_INTERVAL_S)


def run_to_end(job: Job[OutcomeT]) -> OutcomeT:
    """Blocking: wait for the job, build its results, always release it."""
    try:
        job.wait()
        return job.finish()
    finally:
        job.close()
