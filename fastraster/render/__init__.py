"""Rendering: colour palettes as pdgraster makes them (:mod:`fastraster.render.palettes`)."""
