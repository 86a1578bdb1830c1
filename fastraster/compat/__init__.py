"""Drop-in replacements for other tools' APIs (pdgraster's ``RasterTiler``)."""
