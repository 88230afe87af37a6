"""Restyling an image: the tiling engine, its memory plan and the colour maths around it."""
