"""Which scene family each synthetic seed renders, and which families training never sees.

Plain Python (no bpy), so that the trainer and the tests can check a plan without Blender.
The out-of-distribution protocol keeps WHOLE families out of training, not just seeds: a
model is judged on layouts it never saw (the model card reports those figures first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# "primitives" is the original generator (floor, sometimes walls, random primitives); the
# others were added so that the model sees many layouts, lenses and heights.
FAMILIES = (
    "primitives", "room", "street", "clutter", "thin", "people", "forest", "aerial", "warehouse",
    "scatter", "shelves", "stairs", "facade", "corridor", "terrain", "tabletop",
)
# Never rendered for training: the out-of-distribution evaluation families.
HELDOUT_FAMILIES = ("corridor", "terrain", "tabletop")
TRAIN_FAMILIES = tuple(f for f in FAMILIES if f not in HELDOUT_FAMILIES)
ALIASES = {"train": TRAIN_FAMILIES, "heldout": HELDOUT_FAMILIES, "all": FAMILIES}


class HeldOutFamilyError(ValueError):
    """A training plan or training set names a family kept out of training."""


def resolve_families(text: str) -> tuple[str, ...]:
    """'room,street' or an alias ('train', 'heldout', 'all') -> family names, checked."""
    names: list[str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        names.extend(ALIASES.get(part, (part,)))
    unknown = [n for n in names if n not in FAMILIES]
    if unknown or not names:
        raise ValueError(f"unknown scene families {unknown or text!r}; known: {', '.join(FAMILIES)}")
    return tuple(dict.fromkeys(names))


def seed_plan(seeds: Iterable[int], families: Sequence[str]) -> list[tuple[str, int]]:
    """(family, seed) per seed: the family cycles with the seed, so any run of seeds is
    balanced across families and a seed always renders the same scene."""
    return [(families[seed % len(families)], seed) for seed in seeds]


def training_plan(seeds: Iterable[int], families: Sequence[str] = TRAIN_FAMILIES) -> list[tuple[str, int]]:
    """A seed plan for training data; refuses any held-out family."""
    check_training_families(families)
    return seed_plan(seeds, families)


def check_training_families(families: Iterable[str]) -> None:
    held = sorted(set(families) & set(HELDOUT_FAMILIES))
    if held:
        raise HeldOutFamilyError(
            f"families {held} are held out of training (the out-of-distribution check); "
            "render them only for evaluation")


def output_name(family: str, seed: int) -> str:
    """The file a (family, seed) render is saved as; the original family keeps its old names."""
    return f"{seed:06d}.npz" if family == "primitives" else f"{family}-{seed:06d}.npz"
