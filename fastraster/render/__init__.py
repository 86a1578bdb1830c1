"""Turning bands into pictures: pdgraster's palettes and value ranges, previews, WMTS."""
