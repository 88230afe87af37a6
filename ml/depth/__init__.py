"""Depth from one photo (Depth Anything V2, the built-in model), and depth turned into a mesh."""
