"""Private temporary folders for jobs, and the removal of those a killed Blender left behind.

Every job hands its images over in a folder of the system's temporary directory (tens of MB
to GB for big textures and photos). A job removes its folder when it ends; a Blender that
is killed, or crashes, cannot. Each folder therefore records which process on which machine
made it, and the next session removes the folders whose maker is gone.

Only folders with that record, owned by this user, whose maker ran in this very system (the
same host name, and on Linux the same boot and process-id namespace: containers sharing a
temporary folder see other process ids) and no longer runs, are removed: nothing of a Blender
still running (this one or another), nor anything without the record. On Windows, where a
process cannot be asked whether it runs without extra system calls, nothing is removed.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile

log = logging.getLogger(__name__)

PREFIX = "neural-restyle-"
OWNER_FILE = ".neural-restyle-owner"


def make_folder(kind: str) -> str:
    """A new private folder ``neural-restyle-<kind>-*`` in the temporary directory, recording
    its maker. OSError as from ``tempfile.mkdtemp`` (a full or read-only temporary folder)."""
    folder = tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-")
    try:
        with open(os.path.join(folder, OWNER_FILE), "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {system_identity()}\n")
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def system_identity() -> str:
    """Where a process id means the same process: the host name, and on Linux the boot and the
    process-id namespace (no spaces: it is the rest of the record's line)."""
    parts = [socket.gethostname().replace(" ", "_")]
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            parts.append(f.read().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:  # not Linux (macOS has no process-id namespaces)
        pass
    return "/".join(parts)


def process_runs(pid: int) -> bool:
    """Whether a process with this id runs; a process of another user, an id that cannot be
    asked about, and anything on Windows (where os.kill ends the process) count as running."""
    if os.name != "posix" or pid <= 0:
        return True
    try:
        os.kill(pid, 0)  # signal 0: asks, sends nothing
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_abandoned(root: str | None = None) -> list[str]:
    """Remove the job folders in ``root`` (the temporary directory) whose maker is gone; returns them."""
    if os.name != "posix":
        return []
    root = root or tempfile.gettempdir()
    here, uid, removed = system_identity(), os.getuid(), []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        try:
            if not entry.name.startswith(PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            with open(os.path.join(entry.path, OWNER_FILE), encoding="utf-8") as f:
                pid_text, _, maker = f.read().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):  # no record (not ours to judge), or unreadable
            continue
        if maker != here or pid == os.getpid() or process_runs(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.exists(entry.path):
            removed.append(entry.path)
    if removed:
        log.info("removed %d temporary folder(s) left by an earlier Blender session that ended", len(removed))
    return removed


_swept = False


def sweep_once() -> None:
    """remove_abandoned() the first time a session needs it (never at registration)."""
    global _swept
    if not _swept:
        _swept = True
        remove_abandoned()
