"""Model files on disk: download (resumable, atomic, checksummed), install from a file, remove.

No torch and no bpy: Blender's process runs downloads in a thread. Whether the network
may be used at all is decided by the caller (``bpy.app.online_access``) and passed in.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from .catalog import ALL_STYLES, ModelFile, StyleEntry
from .errors import (
    ChecksumMismatch,
    DiskFull,
    DownloadCancelled,
    DownloadError,
    ModelNotFound,
    NetworkUnavailable,
    OnlineAccessDisabled,
    TruncatedDownload,
)

MIRROR_ENV = "NEURAL_RESTYLE_MIRROR"
CHUNK = 1 << 16
USER_AGENT = "NeuralRestyle/0.1 (Blender extension)"
HASHES_FILE = "hashes.json"
ProgressFn = Callable[[int, int | None], None]  # bytes done, bytes expected (None: unknown)
CancelFn = Callable[[], bool]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelStore:
    def __init__(
        self,
        root: Path,
        online: bool,
        mirror: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        retry_wait: float = 1.0,
    ) -> None:
        self.root = Path(root)
        self.online = online
        self.mirror = (mirror or os.environ.get(MIRROR_ENV) or "").rstrip("/") or None
        self.timeout, self.retries, self.retry_wait = timeout, retries, retry_wait

    # -- where things are ---------------------------------------------------------------
    def path_of(self, file: ModelFile) -> Path:
        return self.root / file.filename

    def paths(self, entry: StyleEntry) -> dict[str, Path]:
        return {f.role: self.path_of(f) for f in entry.files}

    def is_installed(self, entry: StyleEntry) -> bool:
        return all(self.path_of(f).exists() for f in entry.files)

    def is_pinned(self, entry: StyleEntry) -> bool:
        return all(f.sha256 for f in entry.files)

    def url_of(self, file: ModelFile) -> str:
        if self.mirror is None:
            return file.url
        name = Path(urllib.parse.urlparse(file.url).path).name
        return f"{self.mirror}/{name}"

    # -- recorded hashes of unpinned files -------------------------------------------------
    def _recorded(self) -> dict[str, str]:
        try:
            return json.loads((self.root / HASHES_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _record(self, name: str, digest: str) -> None:
        hashes = self._recorded()
        hashes[name] = digest
        target = self.root / HASHES_FILE
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(hashes, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, target)

    def verify(self, entry: StyleEntry) -> str:
        """Check an installed entry's files against their hashes without changing anything."""
        for file in entry.files:
            expected = file.sha256 or self._recorded().get(file.filename)
            if expected is None:
                return "unpinned and never recorded"
            if sha256_of(self.path_of(file)) != expected:
                raise ChecksumMismatch(f"{file.filename} does not match its checksum: remove it and download again")
        return "ok"

    def _verify(self, name: str, path: Path, pinned: str | None) -> None:
        """Check a new file against its pinned hash, or the one recorded on first download."""
        digest = sha256_of(path)
        expected = pinned or self._recorded().get(name)
        if expected is None:
            self._record(name, digest)
            return
        if digest != expected:
            path.unlink(missing_ok=True)
            source = "the published checksum" if pinned else "the file first downloaded on this machine"
            raise ChecksumMismatch(
                f"{name} does not match {source} (sha256 {digest[:12]}..., expected {expected[:12]}...): "
                "it was removed. It may be corrupted or tampered with"
            )

    # -- download ---------------------------------------------------------------------------
    def download(self, entry: StyleEntry, progress: ProgressFn | None = None,
                 cancelled: CancelFn | None = None) -> dict[str, Path]:
        if not entry.files:
            return {}
        if not self.online:
            urls = ", ".join(f.url for f in entry.files)
            raise OnlineAccessDisabled(
                f"Online access is off (Preferences > System > Network), so '{entry.name}' cannot be "
                f"downloaded. Download {urls} yourself and install it with Add Custom Style from File, "
                "or allow online access"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        missing = [f for f in entry.files if not self.path_of(f).exists()]
        total = sum(f.size or 0 for f in missing) or None
        done_before = 0
        for file in missing:
            def report(done: int, expected: int | None, offset: int = done_before) -> None:
                if progress is not None:
                    progress(offset + done, total if total else expected)

            if file.archive_member:
                self._download_archive_member(entry, file, report, cancelled)
            else:
                part = self.root / (file.filename + ".part")
                self._fetch(self.url_of(file), part, report, cancelled)
                self._verify(file.filename, part, file.sha256)
                os.replace(part, self.path_of(file))
            done_before += file.size or 0
        return self.paths(entry)

    def _download_archive_member(self, entry: StyleEntry, file: ModelFile, report: ProgressFn,
                                 cancelled: CancelFn | None) -> None:
        archive_name = Path(urllib.parse.urlparse(file.url).path).name or "archive.zip"
        part = self.root / (archive_name + ".part")
        self._fetch(self.url_of(file), part, report, cancelled)
        self._verify(archive_name, part, None)
        try:
            with zipfile.ZipFile(part) as archive:
                members = set(archive.namelist())
                siblings = [f for e in _entries_sharing(file.url) for f in e.files]
                for sibling in siblings:  # one download installs every model of the archive
                    if sibling.archive_member in members and not self.path_of(sibling).exists():
                        temporary = self.path_of(sibling).with_suffix(".extracting")
                        with archive.open(sibling.archive_member) as src, open(temporary, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        os.replace(temporary, self.path_of(sibling))
                if file.archive_member not in members:
                    raise DownloadError(f"{archive_name} does not contain {file.archive_member}")
        except zipfile.BadZipFile as exc:
            raise DownloadError(f"{archive_name} is not a valid zip archive") from exc
        finally:
            part.unlink(missing_ok=True)

    def _fetch(self, url: str, part: Path, report: ProgressFn, cancelled: CancelFn | None) -> None:
        """Download url into part, resuming what an earlier attempt left there."""
        last_error: Exception | None = None
        expected: int | None = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.retry_wait * attempt)
            have = part.stat().st_size if part.exists() else 0
            headers = {"User-Agent": USER_AGENT}
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout) as rsp:
                    resumed = have and rsp.status == 206
                    length = rsp.headers.get("Content-Length")
                    expected = (have if resumed else 0) + int(length) if length is not None else None
                    done = have if resumed else 0
                    with open(part, "ab" if resumed else "wb") as out:
                        while True:
                            if cancelled is not None and cancelled():
                                raise DownloadCancelled("Download cancelled; it will resume where it stopped")
                            block = rsp.read(CHUNK)
                            if not block:
                                break
                            out.write(block)
                            done += len(block)
                            report(done, expected)
                if expected is None or done >= expected:
                    return
                last_error = TruncatedDownload(f"the connection closed after {done} of {expected} bytes")
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and have:  # asked for bytes past the end: the file was complete
                    return
                if exc.code in (404, 410):
                    raise ModelNotFound(f"{url} answered {exc.code} (not found): the file has moved or the "
                                        "mirror does not have it") from exc
                if exc.code < 500:
                    raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}") from exc
                last_error = exc
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    part.unlink(missing_ok=True)
                    raise DiskFull(f"The disk holding {self.root} is full: free some space and download again") from exc
                if isinstance(exc, (urllib.error.URLError, socket.timeout, ConnectionError)) or exc.errno in (
                    errno.ECONNRESET, errno.ECONNREFUSED):
                    last_error = exc
                else:
                    raise
        if isinstance(last_error, TruncatedDownload):
            raise TruncatedDownload(f"Download of {url} stopped early ({last_error}); run Download again to "
                                    "resume where it stopped")
        raise NetworkUnavailable(f"Could not reach {url} after {self.retries} attempts ({last_error}). Check the "
                                 "network or install the file from disk")

    # -- install from disk, remove --------------------------------------------------------
    def install_file(self, entry: StyleEntry, role: str, source: Path) -> Path:
        """Copy a file the user downloaded themselves into the store, checked like a download."""
        file = next((f for f in entry.files if f.role == role), None)
        if file is None:
            raise DownloadError(f"'{entry.name}' has no file with the role '{role}'")
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.root / (file.filename + ".installing")
        shutil.copyfile(source, temporary)
        self._verify(file.filename, temporary, file.sha256)
        os.replace(temporary, self.path_of(file))
        return self.path_of(file)

    def remove(self, entry: StyleEntry) -> int:
        """Delete an entry's files; returns the bytes freed."""
        freed = 0
        for file in entry.files:
            path = self.path_of(file)
            if path.exists():
                freed += path.stat().st_size
                path.unlink()
        return freed


def _entries_sharing(url: str) -> list[StyleEntry]:
    return [entry for entry in ALL_STYLES if any(f.url == url for f in entry.files)]

