"""Published style generators, re-implemented from their papers and checkpoint layouts.

Each module's ``state_dict()`` has exactly the key names and shapes of the published
checkpoint, so the files load unchanged; whole-image normalisation uses GlobalNorm
so the engine can tile them exactly.
"""
