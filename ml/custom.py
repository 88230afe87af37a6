"""Style models the user added from files: kept in the store under custom/, listed in
custom.json beside them. Plain Python, no torch (the worker identifies the file first)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from .catalog import ModelFile, StyleEntry, get_style
from .errors import RestyleError, UnknownStyleError

INDEX = "custom.json"
PREFIX = "custom-"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def _read(root: Path) -> list[dict[str, str]]:
    try:
        data = json.loads((root / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [item for item in data if isinstance(item, dict) and {"id", "name", "file", "arch"} <= item.keys()]


def _write(root: Path, items: list[dict[str, str]]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / (INDEX + ".tmp")
    temporary.write_text(json.dumps(items, indent=1), encoding="utf-8")
    os.replace(temporary, root / INDEX)


def _entry(item: dict[str, str]) -> StyleEntry:
    file = ModelFile("model", f"custom/{item['file']}", url="")
    description = f"Your model '{item['name']}' ({item['arch']}, added from {item.get('source', 'a file')})"
    return StyleEntry(item["id"], item["name"], description, "custom", "", "", "as its author licensed it", False,
                      (file,))


def custom_styles(root: Path) -> list[StyleEntry]:
    return [_entry(item) for item in _read(root)]


def add_custom(root: Path, source: Path, arch: str, name: str | None = None) -> StyleEntry:
    """Copy a checked model file into the store and list it; returns its entry."""
    name = name or source.stem.replace("_", " ").title()
    items = _read(root)
    style_id = PREFIX + _slug(name)
    taken = {item["id"] for item in items}
    number = 2
    base = style_id
    while style_id in taken:
        style_id, number = f"{base}-{number}", number + 1
    folder = root / "custom"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{style_id}{source.suffix or '.pth'}"
    temporary = target.with_suffix(".copying")
    shutil.copyfile(source, temporary)
    os.replace(temporary, target)
    item = {"id": style_id, "name": name, "file": target.name, "arch": arch, "source": source.name}
    _write(root, [*items, item])
    return _entry(item)


def remove_custom(root: Path, style_id: str) -> None:
    items = _read(root)
    keep = [item for item in items if item["id"] != style_id]
    if len(keep) == len(items):
        raise RestyleError(f"'{style_id}' is not one of your custom styles")
    for item in items:
        if item["id"] == style_id:
            (root / "custom" / item["file"]).unlink(missing_ok=True)
    _write(root, keep)


def find_style(style_id: str, root: Path | None) -> StyleEntry:
    """A catalog style, or one of the user's custom styles in the store at ``root``."""
    if style_id.startswith(PREFIX) and root is not None:
        for entry in custom_styles(root):
            if entry.id == style_id:
                return entry
        raise UnknownStyleError(f"The custom style '{style_id}' is not installed any more")
    return get_style(style_id)
