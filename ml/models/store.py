"""Model files on disk: download (resumable, atomic, checksummed), install from a file, remove.

No torch and no bpy: Blender's process runs downloads in a thread. Whether the network
may be used at all is decided by the caller (``bpy.app.online_access``) and passed in.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import io
import json
import logging
import os
import pickle
import re
import shutil
import socket
import stat
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    ChecksumMismatch,
    DiskFull,
    DownloadCancelled,
    DownloadError,
    ModelNotFound,
    NetworkUnavailable,
    NotAModelFile,
    OnlineAccessDisabled,
    RestyleError,
    TruncatedDownload,
    UnsafeModelFile,
    UnsupportedModel,
)
from ..runtime import scratch
from .catalog import ModelEntry, ModelFile
from .registry import ARCHITECTURES, catalog_entries, is_depth_architecture

log = logging.getLogger(__name__)

MIRROR_ENV = "NEURAL_RESTYLE_MIRROR"
CHUNK = 1 << 16
USER_AGENT = "NeuralRestyle/0.1 (Blender extension)"
HASHES_FILE = "hashes.json"
ProgressFn = Callable[[int, int | None], None]  # bytes done, bytes expected (None: unknown)
CancelFn = Callable[[], bool]
# The largest model file accepted, counted as the bytes its tensors take once loaded. The biggest
# published checkpoint is 390 MB; a few-MB file that expands to gigabytes is refused before loading.
MAX_MODEL_BYTES = 1 << 30
# Depth Anything V2 Large holds 335 M parameters: 1.34 GB in fp32. A file whose tensors carry a
# Depth Anything V2 layout may take up to this much; every other model keeps the limit above.
MAX_DEPTH_MODEL_BYTES = 2 << 30
MAX_PICKLE_BYTES = 64 << 20  # the pickled key table of a 390 MB checkpoint is under 100 kB
MODEL_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")
WRAPPER_KEYS = ("state_dict", "model", "params_ema", "params", "generator", "netG", "G")
LEGACY_BUFFER = re.compile(r"(^|\.)(running_mean|running_var|num_batches_tracked)$")
OFFLINE_HINT = "Preferences > System > Network > Allow Online Access"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- what a model file holds, read without unpickling code or loading tensors ------------------
# torch is not imported here (Blender's process checks downloads); the pickle is read by an
# unpickler whose only callables are the stand-ins below, so nothing in the file can run.
STORAGE_DTYPES = {  # torch's typed storage names as pickled by torch.save: dtype, bytes per element
    "FloatStorage": ("float32", 4), "DoubleStorage": ("float64", 8), "HalfStorage": ("float16", 2),
    "BFloat16Storage": ("bfloat16", 2), "LongStorage": ("int64", 8), "IntStorage": ("int32", 4),
    "ShortStorage": ("int16", 2), "CharStorage": ("int8", 1), "ByteStorage": ("uint8", 1),
    "BoolStorage": ("bool", 1), "ComplexFloatStorage": ("complex64", 8), "ComplexDoubleStorage": ("complex128", 16),
}
SAFETENSORS_DTYPES = {
    "F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2), "BF16": ("bfloat16", 2),
    "I64": ("int64", 8), "I32": ("int32", 4), "I16": ("int16", 2), "I8": ("int8", 1), "U8": ("uint8", 1),
    "BOOL": ("bool", 1), "F8_E4M3": ("float8_e4m3fn", 1), "F8_E5M2": ("float8_e5m2", 1),
}
FLOAT_DTYPES = {"float64", "float32", "float16", "bfloat16"}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelContents:
    """The tensors a model file declares (wrappers unwrapped, ``module.`` prefixes stripped)."""

    tensors: dict[str, TensorInfo]
    loaded_bytes: int  # what the tensors' storages take in memory once loaded
    format: str  # "pytorch", "pytorch-legacy" or "safetensors"


class _Storage:
    def __init__(self, dtype: str, itemsize: int, key: str, numel: int) -> None:
        self.dtype, self.itemsize, self.key, self.numel = dtype, itemsize, key, numel


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


class _Tensor:
    def __init__(self, storage: object, offset: object, size: object, *rest: object) -> None:
        if not isinstance(storage, _Storage) or not isinstance(size, tuple):
            raise UnsupportedModel("a tensor without storage")
        self.storage, self.shape = storage, tuple(int(n) for n in size)


class _Dict(dict):  # type: ignore[type-arg]  # OrderedDict stand-in; takes the state_dict's _metadata
    pass


def _rebuild_parameter(data: object, *rest: object) -> object:
    return data


class _TableReader(pickle.Unpickler):
    """An unpickler that knows only a state dict's vocabulary; any other global is refused."""

    ALLOWED: dict[str, Callable[..., Any]] = {
        "collections.OrderedDict": _Dict,
        "torch._utils._rebuild_tensor_v2": _Tensor,
        "torch._utils._rebuild_tensor": _Tensor,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
    }

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full in self.ALLOWED:
            return self.ALLOWED[full]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeModelFile(
            f"it contains objects other than tensors ({full}), and loading it could run code. "
            "Only plain weight files are accepted"
        )

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsupportedModel("an unknown kind of storage")
        dtype, itemsize = STORAGE_DTYPES[pid[1].name]
        return _Storage(dtype, itemsize, str(pid[2]), int(pid[4]))


def _unpickle(data: bytes | io.BufferedIOBase) -> Any:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return _TableReader(stream).load()


def _state_of(data: object, name: str) -> dict[str, _Tensor]:
    """Unwrap ``{"state_dict": {...}}``-style wrappers and strip ``module.`` prefixes."""
    for _ in range(3):
        if isinstance(data, dict) and not all(isinstance(v, _Tensor) for v in data.values()):
            data = next((data[k] for k in WRAPPER_KEYS if isinstance(data.get(k), dict)), data)
    if not isinstance(data, dict) or not data or not all(isinstance(k, str) and isinstance(v, _Tensor)
                                                         for k, v in data.items()):
        raise UnsupportedModel(f"{name} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in data.items()}


def key_mapper(keys: list[str]) -> Callable[[str], str]:
    """How to rename a state dict's keys to the published layout, from its key names alone.

    Fine-tuned and converted checkpoints carry the published keys under an extra prefix
    (``module.`` from DistributedDataParallel, ``model.`` or ``depth_anything.`` from a training
    wrapper, or several of these): when every key shares the prefix that stands before a known
    architecture's signature key, it is dropped. A Depth Anything V2 file whose encoder keys lost
    their ``pretrained.`` prefix (a bare DINOv2 next to ``depth_head.``) gets it back."""
    present = set(keys)
    signature_keys = [known.signature[0][0] for known in ARCHITECTURES.values()]
    prefix = ""
    if not any(key in present for key in signature_keys):
        for wanted in signature_keys:
            found = next((key for key in keys if key.endswith("." + wanted)), None)
            if found is not None:
                candidate = found[: -len(wanted)]
                if all(key.startswith(candidate) for key in keys):
                    prefix = candidate
                    break
    stripped = [key[len(prefix):] for key in keys]
    bare_encoder = ("patch_embed.proj.weight" in stripped and "pretrained.patch_embed.proj.weight" not in stripped
                    and any(key.startswith("depth_head.") for key in stripped))

    def rename(key: str) -> str:
        key = key[len(prefix):]
        if bare_encoder and not key.startswith("depth_head."):
            key = "pretrained." + key
        return key

    return rename


def _too_big(name: str, size: int, limit: int) -> UnsupportedModel:
    return UnsupportedModel(
        f"{name} would take {size / 1e6:,.0f} MB once loaded, more than the {limit / 1e6:,.0f} MB any style or "
        "depth model needs: it was not loaded (a damaged file or a compression bomb)"
    )


def _contents_of_zip(path: Path, name: str, limit: int) -> ModelContents:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        unpacked = sum(info.file_size for info in infos)
        if unpacked > limit:  # sizes from the central directory, checked before anything is expanded
            raise _too_big(name, unpacked, limit)
        table = next((i for i in infos if i.filename.endswith("data.pkl") and i.filename.count("/") == 1), None)
        if table is None:
            raise UnsupportedModel(f"{name} is a zip archive but not a PyTorch model file (no data.pkl)")
        if table.file_size > MAX_PICKLE_BYTES:
            raise _too_big(name, table.file_size, MAX_PICKLE_BYTES)
        state = _state_of(_unpickle(archive.read(table)), name)
        folder = table.filename.rsplit("/", 1)[0]
        sizes = {info.filename: info.file_size for info in infos}
        storages: dict[str, int] = {}
        for tensor in state.values():
            storage = tensor.storage
            need = storage.numel * storage.itemsize
            have = sizes.get(f"{folder}/data/{storage.key}")
            if have is None or have < need:
                raise UnsupportedModel(f"{name} is truncated or damaged: the data of a tensor is missing")
            storages[storage.key] = need
    loaded = sum(storages.values())
    if loaded > limit:
        raise _too_big(name, loaded, limit)
    return ModelContents({k: TensorInfo(v.storage.dtype, v.shape) for k, v in state.items()}, loaded, "pytorch")


def _contents_of_legacy(path: Path, name: str, limit: int) -> ModelContents:
    """The pre-1.6 format: pickles of magic, version and system info, the state dict, then raw storages."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if _unpickle(handle) != LEGACY_MAGIC:  # type: ignore[arg-type]
            raise UnsupportedModel(f"{name} is not a PyTorch model file")
        _unpickle(handle)  # type: ignore[arg-type]  # protocol version
        _unpickle(handle)  # type: ignore[arg-type]  # system info
        state = _state_of(_unpickle(handle), name)  # type: ignore[arg-type]
    storages = {t.storage.key: t.storage.numel * t.storage.itemsize for t in state.values()}
    loaded = sum(storages.values())
    if loaded > limit:
        raise _too_big(name, loaded, limit)
    if loaded > size:
        raise UnsupportedModel(f"{name} is truncated or damaged: it declares more data than it holds")
    return ModelContents({k: TensorInfo(v.storage.dtype, v.shape) for k, v in state.items()}, loaded,
                         "pytorch-legacy")


def _contents_of_safetensors(path: Path, name: str, limit: int) -> ModelContents:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise UnsupportedModel(f"{name} is truncated: a safetensors file starts with an 8-byte header size")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_PICKLE_BYTES, size - 8):
            raise UnsupportedModel(f"{name} is truncated or damaged: its header claims {length:,} bytes")
        try:
            header = json.loads(handle.read(length))
        except ValueError as exc:
            raise UnsupportedModel(f"{name} is damaged: its safetensors header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise UnsupportedModel(f"{name} is damaged: its safetensors header is not a table of tensors")
    tensors: dict[str, TensorInfo] = {}
    loaded = 0
    data_size = size - 8 - length
    for key, value in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype, itemsize = SAFETENSORS_DTYPES[value["dtype"]]
            shape = tuple(int(n) for n in value["shape"])
            start, end = (int(n) for n in value["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UnsupportedModel(f"{name} is damaged: the entry for '{key}' is not readable") from exc
        numel = 1
        for n in shape:
            numel *= n
        if min(shape, default=1) < 0 or not 0 <= start <= end <= data_size or end - start != numel * itemsize:
            raise UnsupportedModel(f"{name} is truncated or damaged: the data of '{key}' is not in the file")
        tensors[key.removeprefix("module.")] = TensorInfo(dtype, shape)
        loaded += end - start
    if not tensors:
        raise UnsupportedModel(f"{name} holds no tensors")
    if loaded > limit:
        raise _too_big(name, loaded, limit)
    return ModelContents(tensors, loaded, "safetensors")


def regular_file(path: Path, name: str | None = None) -> Path:
    """The file behind ``path`` (symlinks followed) when it is a regular, non-empty file."""
    path = Path(path)
    try:
        target = path.resolve(strict=True)
        info = target.stat()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on older Pythons
        raise UnsupportedModel(f"{path} does not exist (or is a broken link)") from exc
    if stat.S_ISDIR(info.st_mode):
        raise UnsupportedModel(f"{path} is a folder, not a model file: pick the .pth or .safetensors file inside it")
    if not stat.S_ISREG(info.st_mode):
        raise UnsupportedModel(f"{path} is not a regular file (a device, pipe or socket)")
    if info.st_size == 0:
        raise UnsupportedModel(f"{name or path.name} is empty (0 bytes): the download or copy did not complete")
    return target


def read_contents(path: Path, limit: int = MAX_MODEL_BYTES, name: str | None = None) -> ModelContents:
    """Every tensor's name, dtype and shape, and the memory they need, without loading any.

    ``name`` is the file's real name when ``path`` is a temporary copy (its suffix decides the format).
    Raises UnsupportedModel (not a model, truncated, too big) or UnsafeModelFile (code in the pickle)."""
    shown = Path(name or Path(path).name)
    path = regular_file(path, shown.name)
    suffix = shown.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise UnsupportedModel(f"{shown.name} is not a model file: accepted are {', '.join(MODEL_SUFFIXES)}")
    name = shown.name
    # The tables are read up to the depth models' ceiling; what they declare then decides the limit.
    ceiling = max(limit, MAX_DEPTH_MODEL_BYTES) if limit >= MAX_MODEL_BYTES else limit
    contents = _read_tables(path, name, suffix, ceiling)
    rename = key_mapper(list(contents.tensors))
    contents = ModelContents({rename(k): v for k, v in contents.tensors.items()}, contents.loaded_bytes,
                             contents.format)
    if contents.loaded_bytes > limit and not is_depth_architecture(matching_arch(contents)):
        raise _too_big(name, contents.loaded_bytes, limit)
    return contents


def _read_tables(path: Path, name: str, suffix: str, limit: int) -> ModelContents:
    try:
        if suffix == ".safetensors":
            return _contents_of_safetensors(path, name, limit)
        if zipfile.is_zipfile(path):
            return _contents_of_zip(path, name, limit)
        with open(path, "rb") as handle:
            head = handle.read(4)
        if head == b"PK\x03\x04":  # a zip whose end (the table of contents) is missing
            raise UnsupportedModel(f"{name} is truncated or damaged: an incomplete PyTorch zip file")
        start = head[:1]
        try:
            return _contents_of_legacy(path, name, limit)
        except UnsafeModelFile:
            raise
        except (RestyleError, pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
                AttributeError) as exc:
            if start == b"\x80":  # a binary pickle, so a damaged model rather than some other file
                raise
            text = start.isascii() and (start.isalnum() or start in b"<{[ \t\r\n")
            raise UnsupportedModel(f"{name} is not a PyTorch model file (it holds "
                                   f"{'a web page or text' if text else 'other data'})") from exc
    except UnsafeModelFile as exc:
        raise UnsafeModelFile(f"Refused {name}: {exc}") from exc
    except RestyleError:
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError, KeyError, IndexError,
            AttributeError, struct.error, MemoryError, RecursionError) as exc:  # damaged bytes, none of it ran code
        raise UnsupportedModel(f"{name} is not a readable model file (truncated or damaged: "
                               f"{type(exc).__name__})") from exc
    except OSError as exc:
        raise UnsupportedModel(f"{name} cannot be read ({exc.strerror or exc})") from exc


def matching_arch(contents: ModelContents) -> str | None:
    """The architecture id whose signature the tensors carry, if any."""
    for arch, known in ARCHITECTURES.items():
        if all(key in contents.tensors and (shape is None or contents.tensors[key].shape == shape)
               for key, shape in known.signature):
            return arch
    return None


def check_weights(contents: ModelContents, name: str) -> None:
    """Refuse integer, bool or complex weights: they load, then restyle to garbage or black."""
    for key, tensor in contents.tensors.items():
        if tensor.dtype not in FLOAT_DTYPES and not key.endswith("num_batches_tracked"):
            raise UnsupportedModel(
                f"{name} holds the tensor '{key}' as {tensor.dtype}; a model's weights are floating point. "
                "The file is damaged or was converted wrongly"
            )


def check_model_file(path: Path, arch: str = "", limit: int = MAX_MODEL_BYTES, name: str | None = None
                     ) -> ModelContents:
    """A file that is a model of architecture ``arch`` (any known one when empty), checked without
    running or loading it: what a download must pass before it is trusted."""
    contents = read_contents(path, limit, name)
    name = name or Path(path).name
    check_weights(contents, name)
    found = matching_arch(contents)
    if arch and found != arch:
        expected = ARCHITECTURES[arch].name
        what = ARCHITECTURES[found].name if found else "no known architecture"
        raise UnsupportedModel(f"{name} is not the expected {expected} model (it holds {what})")
    return contents


class ModelStore:
    def __init__(
        self,
        root: Path,
        online: bool,
        mirror: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        retry_wait: float = 1.0,
        offline_reason: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.online = online
        self.mirror = (mirror or os.environ.get(MIRROR_ENV) or "").strip().rstrip("/") or None
        self.timeout, self.retries, self.retry_wait = timeout, retries, retry_wait
        # Why downloads are off, as the user can change it (Preferences, or how Blender was started).
        self.offline_reason = offline_reason or f"Online access is off ({OFFLINE_HINT})"

    # -- where things are ---------------------------------------------------------------
    def path_of(self, file: ModelFile) -> Path:
        return self.root / file.filename

    def paths(self, entry: ModelEntry) -> dict[str, Path]:
        return {f.role: self.path_of(f) for f in entry.files}

    def is_installed(self, entry: ModelEntry) -> bool:
        return all(self.path_of(f).is_file() for f in entry.files)

    def is_pinned(self, entry: ModelEntry) -> bool:
        return all(f.sha256 for f in entry.files)

    def url_of(self, file: ModelFile) -> str:
        if self.mirror is None:
            return file.url
        scheme = urllib.parse.urlparse(self.mirror).scheme.lower()
        if scheme not in ("http", "https"):
            raise DownloadError(
                f"The mirror URL '{self.mirror}' is not an http:// or https:// address: fix it in Preferences > "
                f"Add-ons > Neural Restyle > Mirror URL (or the {MIRROR_ENV} environment variable)"
            )
        name = Path(urllib.parse.urlparse(file.url).path).name
        return f"{self.mirror}/{name}"

    # -- recorded hashes of unpinned files -------------------------------------------------
    def _recorded(self) -> dict[str, str]:
        try:
            data = json.loads((self.root / HASHES_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}

    def _write_records(self, hashes: dict[str, str]) -> None:
        target = self.root / HASHES_FILE
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(hashes, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, target)

    def _record(self, name: str, digest: str) -> None:
        self._write_records({**self._recorded(), name: digest})

    def _forget(self, names: set[str]) -> None:
        hashes = self._recorded()
        if names & hashes.keys():
            self._write_records({k: v for k, v in hashes.items() if k not in names})

    def recorded_hash(self, name: str) -> str | None:
        return self._recorded().get(name)

    def verify(self, entry: ModelEntry) -> str:
        """Check an installed entry's files against their hashes without changing anything."""
        for file in entry.files:
            expected = file.sha256 or self._recorded().get(file.filename)
            if expected is None:
                return "unpinned and never recorded"
            if sha256_of(self.path_of(file)) != expected:
                raise ChecksumMismatch(f"{file.filename} does not match its checksum: remove it and download again")
        return "ok"

    def _check_hash(self, name: str, path: Path, pinned: str | None) -> str:
        """The file's sha256 when it matches its pinned or recorded hash (or has none yet)."""
        digest = sha256_of(path)
        expected = pinned or self._recorded().get(name)
        if expected is not None and digest != expected:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".version").unlink(missing_ok=True)
            source = "the published checksum" if pinned else "the file first downloaded on this machine"
            raise ChecksumMismatch(
                f"{name} does not match {source} (sha256 {digest[:12]}..., expected {expected[:12]}...): "
                "it was removed. It may be corrupted or tampered with"
            )
        return digest

    def _check_model(self, name: str, path: Path, file: ModelFile, origin: str) -> None:
        """An unpinned file must be a model of the expected architecture before anything trusts it:
        a captive portal's web page or a damaged archive is deleted and nothing is recorded."""
        try:
            check_model_file(path, file.arch, max(MAX_MODEL_BYTES, file.byte_limit(file.size) or 0), file.filename)
        except RestyleError as exc:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".version").unlink(missing_ok=True)
            raise NotAModelFile(
                f"{name} from {origin} is not a usable model file: {exc}. It was deleted and nothing was "
                "recorded about it, so Download can try again (check the network, proxy or mirror)"
            ) from exc

    def _accept(self, name: str, path: Path, file: ModelFile, origin: str) -> None:
        """Checksum, then (for unpinned files) contents; the first hash is recorded only after both."""
        digest = self._check_hash(name, path, file.sha256)
        if file.sha256:
            return
        self._check_model(name, path, file, origin)
        if self._recorded().get(name) is None:
            self._record(name, digest)

    def make_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DownloadError(
                f"The model folder {self.root} cannot be created ({exc.strerror or exc}): choose another one in "
                "Preferences > Add-ons > Neural Restyle > Model Folder"
            ) from exc

    # -- download ---------------------------------------------------------------------------
    def download(self, entry: ModelEntry, progress: ProgressFn | None = None,
                 cancelled: CancelFn | None = None) -> dict[str, Path]:
        if not entry.files:
            return {}
        if not self.online:
            urls = ", ".join(f.url for f in entry.files)
            raise OnlineAccessDisabled(
                f"{self.offline_reason}, so '{entry.name}' cannot be downloaded. Download {urls} yourself and "
                "install it with Add Custom Style from File"
            )
        self.make_root()
        missing = [f for f in entry.files if not self.path_of(f).is_file()]
        transfers = {f.url: f.transfer_size for f in missing}  # a shared archive is fetched once
        total = sum(size or 0 for size in transfers.values()) or None
        finished = 0
        for file in missing:
            if self.path_of(file).is_file():
                continue  # extracted from an archive fetched for an earlier file
            start = finished

            def report(done: int, expected: int | None, start: int = start) -> None:
                if progress is not None:  # estimates may be low: never report past 100%
                    known = total if total else (start + expected if expected else None)
                    progress(start + done, max(known, start + done) if known else None)

            if file.archive_member:
                archive_name = _archive_name(file.url)
                with self._download_lock(self.root / (archive_name + ".part"), entry.name):
                    if not self.path_of(file).is_file():  # another session may have finished it meanwhile
                        finished += self._download_archive_member(file, report, cancelled)
            else:
                part = self.root / (file.filename + ".part")
                url = self.url_of(file)
                with self._download_lock(part, entry.name):
                    if self.path_of(file).is_file():
                        continue
                    finished += self._fetch(url, part, report, cancelled, file.byte_limit(file.size))
                    self._accept(file.filename, part, file, url)
                    os.replace(part, self.path_of(file))
        return self.paths(entry)

    @contextmanager
    def _download_lock(self, part: Path, name: str) -> Iterator[None]:
        """One download of a file at a time, across the threads and processes (other Blenders,
        farm nodes) sharing this model folder: two writers of one partial file spoil it.

        The lock is the operating system's (flock; a byte lock on Windows) on ``<part>.lock``: it
        ends with its process however that ends, so a crashed session never blocks the next. The
        file holds who took it, for the message only."""
        lock = part.with_name(part.name + ".lock")
        while True:
            try:
                handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise DownloadError(f"Could not write in the model folder {self.root}: {exc.strerror or exc}") from exc
            try:
                if not _os_lock(handle):
                    raise DownloadError(f"{name} is already being downloaded {_lock_holder(lock)}: wait for that "
                                        "download to end (it installs the model for this session too), or try "
                                        "again in a moment")
                if not _same_file(handle, lock):  # removed by its last holder between our open and our lock
                    os.close(handle)
                    continue
                os.ftruncate(handle, 0)
                os.write(handle, f"{os.getpid()} {scratch.system_identity()}\n".encode())
            except OSError as exc:
                os.close(handle)
                raise DownloadError(f"Could not write in the model folder {self.root}: {exc.strerror or exc}") from exc
            except BaseException:
                os.close(handle)
                raise
            break
        try:
            yield
        finally:
            if os.name != "nt":  # removed while still held, so nobody locks a file that is going away
                lock.unlink(missing_ok=True)
            os.close(handle)  # closing ends the lock

    def _download_archive_member(self, file: ModelFile, report: ProgressFn, cancelled: CancelFn | None) -> int:
        """Fetch the archive, check every model it holds, install them all; returns the bytes fetched."""
        archive_name = _archive_name(file.url)
        part = self.root / (archive_name + ".part")
        url = self.url_of(file)
        fetched = self._fetch(url, part, report, cancelled, file.byte_limit(file.archive_size))
        self._install_archive(part, archive_name, url, file, require=True)
        return fetched

    def install_archive(self, source: Path) -> list[ModelEntry]:
        """Install the models of a published archive the user downloaded themselves (offline: the
        fast-neural-style zip holds four styles), checked as a download is; returns their entries."""
        source = regular_file(source)
        try:
            with zipfile.ZipFile(source) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError) as exc:
            raise NotAModelFile(f"{source.name} is not a readable zip archive ({exc})") from exc
        members = [f for entry in catalog_entries() for f in entry.files if f.archive_member]
        found = next((f for f in members if f.archive_member in names), None)
        if found is None:
            wanted = ", ".join(sorted({f.archive_member or "" for f in members}))
            raise NotAModelFile(f"{source.name} holds none of the models of a published archive (looked for "
                                f"{wanted})")
        archive_name = _archive_name(found.url)
        part = self.root / (archive_name + ".part")
        self.make_root()
        with self._download_lock(part, source.name):
            try:
                shutil.copyfile(source, part)
            except OSError as exc:
                part.unlink(missing_ok=True)
                raise DownloadError(f"Could not copy {source} into {self.root}: {exc.strerror or exc}") from exc
            self._install_archive(part, archive_name, str(source), found, require=False)
        return [entry for entry in _entries_sharing(found.url)
                if entry.files and all(self.path_of(f).is_file() for f in entry.files)]

    def _install_archive(self, part: Path, archive_name: str, origin: str, file: ModelFile, require: bool) -> None:
        """Check the archive at ``part`` (its first hash recorded only once every model in it was
        checked), install every model of the catalog it holds, remove ``part``. ``require``: it must
        hold ``file``'s member."""
        url = origin
        extracted: list[tuple[Path, Path]] = []
        try:
            digest = self._check_hash(archive_name, part, None)
            with zipfile.ZipFile(part) as archive:
                members = {info.filename: info for info in archive.infolist()}
                if require and file.archive_member not in members:
                    raise NotAModelFile(f"{archive_name} from {url} does not contain {file.archive_member}: it was "
                                        "deleted and nothing was recorded about it")
                siblings = [f for e in _entries_sharing(file.url) for f in e.files]
                for sibling in siblings:  # one download installs every model of the archive
                    info = members.get(sibling.archive_member or "")
                    if info is None or self.path_of(sibling).is_file():
                        continue
                    temporary = self.path_of(sibling).with_name(sibling.filename + ".extracting")
                    extracted.append((temporary, self.path_of(sibling)))
                    self._extract(archive, info, temporary, sibling, archive_name, url)
                    self._check_model(sibling.filename, temporary, sibling, f"{archive_name} ({url})")
            for temporary, target in extracted:
                os.replace(temporary, target)
            extracted.clear()
            if self._recorded().get(archive_name) is None:
                self._record(archive_name, digest)  # only now: every model in it was checked
        except zipfile.BadZipFile as exc:
            raise NotAModelFile(f"{archive_name} from {url} is not a valid zip archive (a web page instead of the "
                                "file?): it was deleted and nothing was recorded about it") from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DiskFull(f"The disk holding {self.root} is full: free some space and download again") from exc
            raise DownloadError(f"Could not unpack {archive_name} into {self.root}: {exc.strerror or exc}") from exc
        finally:
            part.unlink(missing_ok=True)
            part.with_name(part.name + ".version").unlink(missing_ok=True)
            for temporary, _ in extracted:
                temporary.unlink(missing_ok=True)

    def _extract(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, file: ModelFile,
                 archive_name: str, url: str) -> None:
        """Copy one member out, never more than the catalog's size allows (a deflate bomb stops early)."""
        limit = file.byte_limit(file.size) or MAX_MODEL_BYTES
        bomb = NotAModelFile(
            f"{archive_name} from {url} is not the published archive: {info.filename} expands past the "
            f"{limit / 1e6:.1f} MB the model can be. It was deleted and nothing was recorded about it"
        )
        if info.file_size > limit:
            raise bomb
        written = 0
        with archive.open(info) as src, open(target, "wb") as dst:
            while block := src.read(CHUNK):
                written += len(block)
                if written > limit:  # the declared size can lie
                    raise bomb
                dst.write(block)

    def _fetch(self, url: str, part: Path, report: ProgressFn, cancelled: CancelFn | None,
               limit: int | None = None) -> int:
        """Download url into part, resuming what an earlier attempt left there; returns its size.

        A body that passes ``limit`` (the catalog's size with a margin) is not the file: the
        download stops and the partial file is deleted, so an endless response cannot fill the disk."""
        last_error: Exception | None = None
        expected: int | None = None
        for attempt in range(self.retries):
            _wait(self.retry_wait * attempt, cancelled)  # Esc is heard between attempts too
            have = part.stat().st_size if part.exists() else 0
            headers = {"User-Agent": USER_AGENT}
            # The version of the file the partial download came from: with If-Range a server whose
            # file changed since sends it whole instead of the rest of the new one after the old start.
            validator_file = part.with_name(part.name + ".version")
            validator = _read_text(validator_file) if have else None
            if have:
                headers["Range"] = f"bytes={have}-"
                if validator:
                    headers["If-Range"] = validator
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout) as rsp:
                    resumed = have and rsp.status == 206 and _range_start(rsp.headers.get("Content-Range")) == have
                    version = rsp.headers.get("ETag") or rsp.headers.get("Last-Modified")
                    if version and not resumed:
                        validator_file.write_text(version, encoding="utf-8")
                    elif not version:
                        validator_file.unlink(missing_ok=True)
                    length = rsp.headers.get("Content-Length")
                    expected = (have if resumed else 0) + int(length) if length is not None else None
                    done = have if resumed else 0
                    if limit is not None and expected is not None and expected > limit:
                        part.unlink(missing_ok=True)
                        validator_file.unlink(missing_ok=True)
                        raise DownloadError(
                            f"{url} announces {expected:,} bytes, more than this model can be ({limit:,} bytes): "
                            "it is not the model file, nothing was downloaded"
                        )
                    with open(part, "ab" if resumed else "wb") as out:
                        while True:
                            if cancelled is not None and cancelled():
                                raise DownloadCancelled("Download cancelled; it will resume where it stopped")
                            block = rsp.read(CHUNK)
                            if not block:
                                break
                            done += len(block)
                            if limit is not None and done > limit:
                                out.close()
                                part.unlink(missing_ok=True)
                                validator_file.unlink(missing_ok=True)
                                raise DownloadError(
                                    f"{url} sent more than {limit:,} bytes, more than this model can be: "
                                    "the download was stopped and the partial file deleted (the server is not "
                                    "sending the model file)"
                                )
                            out.write(block)
                            report(done, expected)
                if expected is None or done >= expected:
                    validator_file.unlink(missing_ok=True)
                    return done
                last_error = TruncatedDownload(f"the connection closed after {done} of {expected} bytes")
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and have:  # asked for bytes past the end
                    total = _range_total(exc.headers.get("Content-Range") if exc.headers else None)
                    if total is None or total == have:  # the file was complete
                        return have
                    # Longer than the server's file: not a part of it. Fetch it again from the start.
                    part.unlink(missing_ok=True)
                    validator_file.unlink(missing_ok=True)
                    last_error = exc
                    continue
                if exc.code in (404, 410):
                    raise ModelNotFound(f"{url} answered {exc.code} (not found): the file has moved or the "
                                        "mirror does not have it") from exc
                if exc.code < 500:
                    raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}") from exc
                last_error = exc
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    part.unlink(missing_ok=True)
                    part.with_name(part.name + ".version").unlink(missing_ok=True)
                    raise DiskFull(f"The disk holding {self.root} is full: free some space and download again") from exc
                if isinstance(exc, (urllib.error.URLError, socket.timeout, ConnectionError)) or exc.errno in (
                    errno.ECONNRESET, errno.ECONNREFUSED):
                    last_error = exc
                else:
                    raise DownloadError(f"Could not write {part}: {exc.strerror or exc}") from exc
            except http.client.HTTPException as exc:  # a malformed response: retry like a dropped one
                last_error = exc
        if isinstance(last_error, TruncatedDownload):
            raise TruncatedDownload(f"Download of {url} stopped early ({last_error}); run Download again to "
                                    "resume where it stopped")
        raise NetworkUnavailable(f"Could not reach {url} after {self.retries} attempts ({last_error}). Check the "
                                 "network or install the file from disk")

    # -- install from disk, remove --------------------------------------------------------
    def install_file(self, entry: ModelEntry, role: str, source: Path) -> Path:
        """Copy a file the user downloaded themselves into the store, checked like a download."""
        file = next((f for f in entry.files if f.role == role), None)
        if file is None:
            raise DownloadError(f"'{entry.name}' has no file with the role '{role}'")
        source = regular_file(source)
        self.make_root()
        temporary = self.root / (file.filename + ".installing")
        try:
            shutil.copyfile(source, temporary)
            self._accept(file.filename, temporary, file, str(source))
            os.replace(temporary, self.path_of(file))
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise DownloadError(f"Could not copy {source} into {self.root}: {exc.strerror or exc}") from exc
        return self.path_of(file)

    def remove(self, entry: ModelEntry) -> int:
        """Delete an entry's files and forget the hashes recorded for them; returns the bytes freed."""
        if not entry.files:
            raise RestyleError(f"'{entry.name}' is built into Neural Restyle: it has no file and cannot be removed")
        freed = 0
        forget = set()
        for file in entry.files:
            path = self.path_of(file)
            if path.is_file() or path.is_symlink():
                freed += path.stat().st_size if path.exists() else 0
                path.unlink()
            forget.add(file.filename)
            if file.archive_member and not any(self.path_of(f).is_file() for e in _entries_sharing(file.url)
                                               for f in e.files):
                forget.add(_archive_name(file.url))
        # A later download is checked afresh (it must still be a model of the right kind before it
        # is trusted), so a bad first download can never lock the genuine file out.
        self._forget(forget)
        return freed


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _archive_name(url: str) -> str:
    """The file name a published archive is kept under while it is fetched (and its hash recorded by)."""
    return Path(urllib.parse.urlparse(url).path).name or "archive.zip"


def _range_total(content_range: str | None) -> int | None:
    """The file size of a ``Content-Range: bytes */TOTAL`` (or ``START-END/TOTAL``) answer."""
    match = re.match(r"bytes (?:\*|\d+-\d+)/(\d+)", content_range or "")
    return int(match.group(1)) if match else None


def _wait(seconds: float, cancelled: CancelFn | None) -> None:
    """Sleep, raising DownloadCancelled as soon as the download is cancelled (also before it)."""
    deadline = time.monotonic() + seconds
    while True:
        if cancelled is not None and cancelled():
            raise DownloadCancelled("Download cancelled; it will resume where it stopped")
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


def _os_lock(handle: int) -> bool:
    """Take the operating system's lock on an open file without waiting; False when another holds it."""
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _same_file(handle: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle), os.stat(path))
    except FileNotFoundError:
        return False


def _lock_holder(lock: Path) -> str:
    """Who holds a download lock, from the record its holder wrote: "in this Blender", "by
    process N on this machine" or "on another machine"."""
    try:
        pid_text, _, identity = lock.read_text(encoding="utf-8").strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):  # just taken, its record not written yet
        return "by another session"
    if identity != scratch.system_identity():
        return "on another machine or container sharing the model folder"
    if pid == os.getpid():
        return "in this Blender (a cancelled download may still be stopping)"
    return f"by process {pid} on this machine"


def _range_start(content_range: str | None) -> int | None:
    """The first byte of a ``Content-Range: bytes START-END/TOTAL`` answer."""
    match = re.match(r"bytes (\d+)-", content_range or "")
    return int(match.group(1)) if match else None


def _entries_sharing(url: str) -> list[ModelEntry]:
    return [entry for entry in catalog_entries() if any(f.url == url for f in entry.files)]
