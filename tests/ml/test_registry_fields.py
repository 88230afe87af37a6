"""ml/models/registry.py builds a descriptor from a ModelEntry's own fields (one trip into the catalog
per lookup, not one per property): what it derives must equal what the entry's properties say."""

from pathlib import Path

import pytest

from ml.models import registry
from ml.models.catalog import ModelEntry, ModelFile
from ml.options import ModelFamily

ENTRIES = [
    *registry.catalog_entries(),
    # families the catalog itself does not ship: a user's style file, a depth file, a half-named factory
    ModelEntry("custom-mine", "Mine", "A model from a file", ModelFamily.CUSTOM,
               files=(ModelFile("model", "mine.pth", url=""),)),
    ModelEntry("depth-custom-mine", "Mine", "Depth", ModelFamily.DEPTH, files=(ModelFile("model", "d.pth", url=""),)),
    ModelEntry("half", "Half", "A module without a factory", ModelFamily.BUILTIN, "styles.toon", ""),
]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_a_descriptor_says_what_its_entry_says(entry):
    described = registry.descriptor_of(entry)
    assert described.kind is entry.kind
    assert described.network == (f"{entry.module}:{entry.factory}" if entry.module and entry.factory else "")
    assert described.family is entry.family and described.entry is entry


def test_asking_for_the_wrong_kind_names_both_kinds():
    with pytest.raises(registry.UnknownStyleError, match="is a depth model, not a style"):
        registry.style(registry.BUILTIN_DEPTH)
    with pytest.raises(registry.UnknownStyleError, match="is a style, not a depth model"):
        registry.depth_model("toon")
    assert registry.depth_file(Path("x.pth"), None).kind is registry.ModelKind.DEPTH
