"""Style and depth models the user added from files: kept in the store under custom/, listed in
custom.json beside them. Plain Python, no torch (the worker identifies the file first).

A depth model (Depth Anything V2 of any size, relative or metric) is listed with ``"kind": "depth"``
and its metric range (``"max_depth"``, metres; empty for relative depth); its id starts with
``custom-depth-`` so that a file recovered without its list entry is still known as a depth model.

The list is never lost: it is written atomically with the previous good copy kept as
custom.json.bak; a damaged custom.json is read as far as it can be, completed from the
backup and from the model files in custom/, and kept aside (custom.json.damaged) on the
next change instead of being overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from ..errors import RestyleError, UnsupportedModel
from ..options import ModelFamily, ModelKind
from .catalog import ADAIN_HALVES, ModelEntry, ModelFile

log = logging.getLogger(__name__)

INDEX = "custom.json"
BACKUP = INDEX + ".bak"
DAMAGED = INDEX + ".damaged"
FOLDER = "custom"
PREFIX = "custom-"
DEPTH_PREFIX = PREFIX + "depth-"
FIELDS = {"id", "name", "file", "arch"}
MODEL_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")
# The slug part of an id: with the prefixes, a collision number and ".safetensors.copying" a model's
# file name stays far below the 255 bytes every file system allows (a 300-letter name once failed
# after its whole training, when the trained file was copied in).
MAX_SLUG = 64


class CustomStyleMissing(RestyleError):
    """A listed custom style whose model file is no longer on disk."""


@dataclass
class CustomList:
    items: list[dict[str, str]] = field(default_factory=list)
    problem: str | None = None  # what was wrong with custom.json and what was recovered


# Latin letters that Unicode does not decompose into a base letter and a mark.
_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
                          "ı": "i", "ħ": "h", "ŧ": "t", "ŋ": "ng"})


def _slug(name: str) -> str:
    """The id part of a name: ASCII letters and digits joined by hyphens, accents taken off
    ("Mon modèle été" -> "mon-modele-ete"), at most MAX_SLUG characters; a name of no Latin
    letter at all is "model" (a number is added when that is taken)."""
    plain = unicodedata.normalize("NFKD", name.lower().translate(_LETTERS))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:MAX_SLUG].rstrip("-") or "model"


_DIRECTION_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_name(name: str) -> str:
    """The display name a model added under ``name`` gets (stripped), or a RestyleError for a name
    that cannot be one: called before a long job (Learn Style) so that it never fails at the end."""
    name = name.strip()
    if not name:
        raise RestyleError("Give the style a name")
    # Line breaks and control characters, and the direction overrides that make a name read other
    # than it is. Other format characters stay: Persian and Indic scripts and emoji need the zero-width
    # joiners.
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _DIRECTION_OVERRIDES for c in name):
        raise RestyleError(f"The name {name!r} contains a line break or control character: give a name of one line")
    return name


def _valid(item: object) -> TypeGuard[dict[str, str]]:
    return isinstance(item, dict) and FIELDS <= item.keys() and all(isinstance(item[k], str) for k in FIELDS) \
        and item["id"].startswith(PREFIX) and "/" not in item["file"] and "\\" not in item["file"] \
        and item["file"] not in ("", ".", "..")  # a hand-edited entry never reaches outside custom/


def _salvage(text: str) -> list[object]:
    """The objects of a JSON list up to the first damaged one (a truncated or garbled file)."""
    decoder = json.JSONDecoder()
    found: list[object] = []
    position = text.find("[") + 1
    if position == 0:
        return found
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        try:
            item, position = decoder.raw_decode(text, position)
        except ValueError:
            return found
        found.append(item)


def _parse(path: Path) -> tuple[list[object], bool] | None:
    """The file's items and whether it was intact; None when there is no file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return [], False
    try:
        data = json.loads(text)
    except ValueError:
        return _salvage(text), False
    return (data, True) if isinstance(data, list) else ([], False)


def read_list(root: Path) -> CustomList:
    """The custom styles listed in ``root``, with a note when the list had to be repaired."""
    parsed = _parse(root / INDEX)
    if parsed is None and not (root / BACKUP).exists():
        return CustomList(_orphans(root, []))
    raw, intact = parsed if parsed is not None else ([], False)
    items: list[dict[str, str]] = [item for item in raw if _valid(item)]
    dropped = len(raw) - len(items)
    problem = None
    if not intact or dropped:
        backup = _parse(root / BACKUP)
        recovered = 0
        for item in backup[0] if backup else []:  # the last good list fills in what is unreadable
            if _valid(item) and item["id"] not in {i["id"] for i in items} and (root / FOLDER / item["file"]).is_file():
                items.append(item)
                recovered += 1
        problem = (f"{root / INDEX} is damaged: {len(items)} custom style(s) were recovered from it"
                   f"{f' and its last good copy ({recovered})' if recovered else ''}")
    before = len(items)
    items = _orphans(root, items)
    if len(items) > before:
        note = f"{len(items) - before} model file(s) in {root / FOLDER} that the list did not name were listed again"
        problem = f"{problem}; {note}" if problem else note
    if problem:
        log.warning("%s", problem)
    return CustomList(items, problem)


def _orphans(root: Path, items: list[dict[str, str]]) -> list[dict[str, str]]:
    """Model files in custom/ that no item names (a damaged list, an interrupted add) listed again."""
    folder = root / FOLDER
    if not folder.is_dir():
        return items
    named = {item["file"] for item in items}
    taken = {item["id"] for item in items}
    found = list(items)
    for path in sorted(folder.iterdir()):
        if path.name in named or path.suffix.lower() not in MODEL_SUFFIXES or not path.is_file():
            continue
        style_id = path.stem if path.stem.startswith(PREFIX) else PREFIX + _slug(path.stem)
        if style_id in taken:
            continue
        taken.add(style_id)
        name = style_id.removeprefix(PREFIX).replace("-", " ").title()
        item = {"id": style_id, "name": name, "file": path.name, "arch": "model", "source": "recovered"}
        if style_id.startswith(DEPTH_PREFIX):  # the metric range is not in the file: relative until re-added
            item.update(kind="depth", max_depth="", arch="Depth Anything V2")
        found.append(item)
    return found


def _write(root: Path, items: list[dict[str, str]]) -> None:
    """Write the list atomically; keep the previous good list as a backup and a damaged one aside."""
    root.mkdir(parents=True, exist_ok=True)
    index = root / INDEX
    temporary = root / (INDEX + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(items, indent=1))
        handle.flush()
        os.fsync(handle.fileno())
    current = _parse(index)
    if current is not None and current[1]:
        shutil.copyfile(index, root / (BACKUP + ".tmp"))  # the index itself never disappears
        os.replace(root / (BACKUP + ".tmp"), root / BACKUP)
    elif current is not None:
        shutil.copyfile(index, root / DAMAGED)  # kept for the user, never silently overwritten
    os.replace(temporary, index)


def is_depth(item: dict[str, str]) -> bool:
    return item.get("kind") == "depth"


def max_depth_of(item: dict[str, str]) -> float | None:
    """The metric range in metres, or None for relative depth (or a hand-edited value that is no number)."""
    try:
        value = float(item.get("max_depth") or "nan")
    except ValueError:
        return None
    return value if value > 0 and value != float("inf") else None


def _entry(item: dict[str, str]) -> ModelEntry:
    file = ModelFile("model", f"{FOLDER}/{item['file']}", url="")
    if is_depth(item):
        metres = max_depth_of(item)
        output = f"metric, up to {metres:g} m" if metres else "relative depth"
        source = item.get("source", "a file")
        description = f"Your depth model '{item['name']}' ({item['arch']}, {output}, from {source})"
        return ModelEntry(item["id"], item["name"], description, ModelFamily.DEPTH, "", "", "as its author licensed it",
                          False, (file,), max_depth=metres)
    origin = item.get("origin") or f"added from {item.get('source', 'a file')}"
    description = f"Your model '{item['name']}' ({item['arch']}, {origin})"
    return ModelEntry(item["id"], item["name"], description, ModelFamily.CUSTOM, "", "", "as its author licensed it",
                      False, (file,))


def custom_styles(root: Path) -> list[ModelEntry]:
    """The user's style models (custom depth models are listed by custom_depth_models)."""
    return [_entry(item) for item in read_list(root).items if not is_depth(item)]


def custom_depth_models(root: Path) -> list[ModelEntry]:
    """The depth models the user added from files."""
    return [_entry(item) for item in read_list(root).items if is_depth(item)]


def add_custom(root: Path, source: Path, arch: str, name: str | None = None, max_depth: float | None = None,
               origin: str | None = None) -> ModelEntry:
    """Copy a checked model file into the store and list it; returns its entry.

    ``arch`` is the architecture id the worker found. Half of AdaIN is refused: it can never run alone.
    A Depth Anything V2 file becomes a custom depth model; ``max_depth`` (metres) marks a metric head.
    ``origin`` says where the model came from in its tooltip ("learned from 3 images") when that is not
    the file: by default "added from <file name>".

    A name already listed gets the number of its id ("Stripes 2", custom-stripes-2): two menu entries
    never read the same."""
    if arch in ADAIN_HALVES:
        half, other = ADAIN_HALVES[arch]
        raise UnsupportedModel(
            f"{source.name} is only the AdaIN {half}: a style needs {other} as well, so it was not added. "
            "Use 'Any Style Image (AdaIN)' in the style menu: Download it, or install both files from disk"
        )
    from .registry import ARCHITECTURES, is_depth_architecture  # the registry reads this module: import late

    arch_name = ARCHITECTURES[arch].name if arch in ARCHITECTURES else arch
    name = (name or source.stem.replace("_", " ").title()).strip() or "Model"
    items = read_list(root).items
    # Adding a model again under the name of a style whose file went missing repairs that style.
    replaced = next((item for item in items if item["name"] == name and not (root / FOLDER / item["file"]).is_file()),
                    None)
    depth = is_depth_architecture(arch)
    if replaced is not None and is_depth(replaced) == depth:
        items = [item for item in items if item is not replaced]
        style_id = replaced["id"]
    else:
        slug = _slug(name)
        if not depth and f"{PREFIX}{slug}-".startswith(DEPTH_PREFIX):  # a style named "Depth Look" is no depth model
            slug = f"style-{slug}"
        style_id = (DEPTH_PREFIX if depth else PREFIX) + slug
        taken = {item["id"] for item in items}
        number = 2
        base = style_id
        while style_id in taken:
            style_id, number = f"{base}-{number}", number + 1
        names = {item["name"].casefold() for item in items}
        if style_id != base and name.casefold() in names:
            name = f"{name} {number - 1}"
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{style_id}{source.suffix.lower() or '.pth'}"
    temporary = target.with_name(target.name + ".copying")
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
        item = {"id": style_id, "name": name, "file": target.name, "arch": arch_name, "source": source.name}
        if origin:
            item["origin"] = origin
        if depth:
            item.update(kind="depth", max_depth=f"{max_depth:g}" if max_depth else "")
        _write(root, [*items, item])
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    return _entry(item)


def remove_custom(root: Path, style_id: str) -> None:
    items = read_list(root).items
    keep = [item for item in items if item["id"] != style_id]
    if len(keep) == len(items):
        raise RestyleError(f"'{style_id}' is not one of your custom styles or depth models")
    for item in items:
        if item["id"] == style_id:
            model = root / FOLDER / item["file"]
            model.unlink(missing_ok=True)
            if model.suffix != ".json":  # a learned style's card (Learn Style from Images) goes with it
                model.with_suffix(".json").unlink(missing_ok=True)
    _write(root, keep)


def all_custom(root: Path) -> list[ModelEntry]:
    """Every model the user added: styles and depth models."""
    return [_entry(item) for item in read_list(root).items]


def find_custom(model_id: str, root: Path) -> ModelEntry | None:
    """The user's model ``model_id`` (None when it is not listed). A listed model whose file is gone raises
    CustomStyleMissing naming where it was and how to fix it."""
    for entry in all_custom(root):
        if entry.id == model_id:
            path = root / entry.files[0].filename
            if not path.is_file():
                raise CustomStyleMissing(
                    f"The model file of your custom {'depth model' if entry.kind == ModelKind.DEPTH else 'style'} "
                    f"'{entry.name}' is missing: it was at {path}. Put the file back there, or add the model "
                    f"again with Add Custom Style from File named '{entry.name}' (or remove it)"
                )
            return entry
    return None

