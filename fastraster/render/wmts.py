"""An OGC WMTS 1.0.0 capabilities document for a web tile tree, so QGIS, GDAL or a web map
(OpenLayers, Leaflet plugins, Cesium) can load the PNGs as tiled layers.

The tree is ``<web_dir>/<layer>/<TMS>/<z>/<x>/<y>.png``, served RESTfully with the template
``<base_url>/<layer>/<TMS>/{TileMatrix}/{TileCol}/{TileRow}.png``. Each statistic folder is one
layer (with ``TileMatrixSetLimits`` of the tiles present, so clients request no missing
tile); each tile matrix set is described from morecantile (scale denominators rescaled to the
tiles' pixel size, top-left corner in the CRS's axis order).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from fastraster.io.atomic import atomic_path
from fastraster.io.tilepaths import find_tiles, url_template, web_tile_path
from fastraster.model.grid import QUAD_TMS, TileGrid

NS = {
    "": "http://www.opengis.net/wmts/1.0",
    "ows": "http://www.opengis.net/ows/1.1",
    "xlink": "http://www.w3.org/1999/xlink",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "gml": "http://www.opengis.net/gml",
}
SCHEMA = ("http://www.opengis.net/wmts/1.0 "
          "http://schemas.opengis.net/wmts/1.0/wmtsGetCapabilities_response.xsd")
FILENAME = "WMTSCapabilities.xml"
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
        ".webp": "image/webp"}


def _q(tag: str) -> str:
    prefix, _, name = tag.rpartition(":")
    return f"{{{NS[prefix]}}}{name}"


def _sub(parent, tag, text=None, **attrib):
    el = ET.SubElement(parent, _q(tag), {(_q(k.replace("__", ":")) if "__" in k else k): v
                                         for k, v in attrib.items()})
    if text is not None:
        el.text = str(text)
    return el


def crs_urn(uri: str) -> str:
    """``http://www.opengis.net/def/crs/EPSG/0/4326`` -> ``urn:ogc:def:crs:EPSG::4326``."""
    parts = uri.rstrip("/").split("/")
    if "def" in parts and "crs" in parts:
        i = parts.index("crs")
        auth, version, code = parts[i + 1:i + 4]
        return f"urn:ogc:def:crs:{auth}:{'' if version == '0' else version}:{code}"
    return uri


def _geographic_bounds(tms_id: str, tile):
    if tms_id in QUAD_TMS:
        g = TileGrid.from_tile(tile, tms_id, 1)
        return g.left, g.bottom, g.right, g.top
    import morecantile

    b = morecantile.tms.get(tms_id).bounds(morecantile.Tile(*tile))
    return b.left, b.bottom, b.right, b.top


def scan(web_dir, ext=".png") -> dict:
    """``{layer: {tms: {z: [tiles]}}}`` of the web tiles below ``web_dir``."""
    out: dict = {}
    root = Path(web_dir)
    for layer_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in find_tiles(layer_dir, ext):
            if f.tile is None or f.tms is None:
                continue
            out.setdefault(layer_dir.name, {}).setdefault(f.tms, {}).setdefault(
                f.tile[2], []).append(f.tile)
    return out


def _tile_size(web_dir, layer, tms, tile, ext):
    from PIL import Image

    with Image.open(web_tile_path(web_dir, layer, tms, tile, ext)) as im:
        return im.size  # (width, height)


def capabilities(web_dir, *, base_url=None, title="fastraster web tiles",
                 ext=".png") -> str:
    """The WMTS 1.0.0 ``GetCapabilities`` XML (a string) for the tiles below ``web_dir``."""
    import morecantile

    web_dir = os.fspath(web_dir)
    tree = scan(web_dir, ext)
    if not tree:
        raise ValueError(f"{web_dir}: no <layer>/<TMS>/<z>/<x>/<y>{ext} tiles")
    base = (base_url or Path(web_dir).resolve().as_uri()).rstrip("/")
    mime = MIME.get(ext, "image/png")
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    root = ET.Element(_q("Capabilities"), {"version": "1.0.0",
                                           _q("xsi:schemaLocation"): SCHEMA})
    ident = _sub(root, "ows:ServiceIdentification")
    _sub(ident, "ows:Title", title)
    _sub(ident, "ows:ServiceType", "OGC WMTS")
    _sub(ident, "ows:ServiceTypeVersion", "1.0.0")
    ops = _sub(root, "ows:OperationsMetadata")
    for name, href in (("GetCapabilities", f"{base}/{FILENAME}"), ("GetTile", f"{base}/")):
        op = _sub(ops, "ows:Operation", name=name)
        get = _sub(_sub(_sub(op, "ows:DCP"), "ows:HTTP"), "ows:Get", xlink__href=href)
        allowed = _sub(_sub(get, "ows:Constraint", name="GetEncoding"), "ows:AllowedValues")
        _sub(allowed, "ows:Value", "RESTful")
    contents = _sub(root, "Contents")
    matrix_sets: dict[str, dict] = {}  # tms -> {"zmax": int, "size": (w, h)}
    for layer, by_tms in tree.items():
        el = _sub(contents, "Layer")
        _sub(el, "ows:Title", layer)
        boxes = [_geographic_bounds(t, tile) for t, zs in by_tms.items()
                 for tile in zs[max(zs)]]
        bbox = _sub(el, "ows:WGS84BoundingBox")
        _sub(bbox, "ows:LowerCorner", f"{min(b[0] for b in boxes)!r} "
                                      f"{min(b[1] for b in boxes)!r}")
        _sub(bbox, "ows:UpperCorner", f"{max(b[2] for b in boxes)!r} "
                                      f"{max(b[3] for b in boxes)!r}")
        _sub(el, "ows:Identifier", layer)  # after the box: the XSD's element order
        style = _sub(el, "Style", isDefault="true")
        _sub(style, "ows:Identifier", "default")
        _sub(el, "Format", mime)
        for tms_id, zs in sorted(by_tms.items()):
            info = matrix_sets.setdefault(tms_id, {"zmax": 0, "size": None})
            info["zmax"] = max(info["zmax"], max(zs))
            if info["size"] is None:
                z0 = max(zs)
                info["size"] = _tile_size(web_dir, layer, tms_id, zs[z0][0], ext)
            link = _sub(el, "TileMatrixSetLink")
            _sub(link, "TileMatrixSet", tms_id)
            limits = _sub(link, "TileMatrixSetLimits")
            for z in sorted(zs):
                lim = _sub(limits, "TileMatrixLimits")
                _sub(lim, "TileMatrix", z)
                _sub(lim, "MinTileRow", min(t[1] for t in zs[z]))
                _sub(lim, "MaxTileRow", max(t[1] for t in zs[z]))
                _sub(lim, "MinTileCol", min(t[0] for t in zs[z]))
                _sub(lim, "MaxTileCol", max(t[0] for t in zs[z]))
        for tms_id in sorted(by_tms):
            _sub(el, "ResourceURL", format=mime, resourceType="tile",
                 template=url_template(base, layer, tms_id, ext))
    from morecantile.utils import meters_per_unit
    from pyproj import CRS

    for tms_id, info in sorted(matrix_sets.items()):
        tms = morecantile.tms.get(tms_id)
        width, height = info["size"]
        mpu = meters_per_unit(CRS.from_user_input(tms.crs.srs))
        el = _sub(contents, "TileMatrixSet")
        _sub(el, "ows:Identifier", tms_id)
        _sub(el, "ows:SupportedCRS", crs_urn(tms.crs.srs))
        if tms.wellKnownScaleSet and (width, height) == (256, 256):
            _sub(el, "WellKnownScaleSet", tms.wellKnownScaleSet)
        for z in range(info["zmax"] + 1):
            m = tms.matrix(z)
            tm = _sub(el, "TileMatrix")
            _sub(tm, "ows:Identifier", z)
            # From the cell size (not the TMS's rounded value), with OGC's 0.28 mm pixel,
            # so clients derive the exact pixel size back.
            cell = m.cellSize * m.tileWidth / width
            _sub(tm, "ScaleDenominator", repr(cell * mpu / 0.00028))
            _sub(tm, "TopLeftCorner", " ".join(repr(float(v)) for v in m.pointOfOrigin))
            _sub(tm, "TileWidth", width)
            _sub(tm, "TileHeight", height)
            _sub(tm, "MatrixWidth", m.matrixWidth)
            _sub(tm, "MatrixHeight", m.matrixHeight)
    _sub(root, "ServiceMetadataURL", xlink__href=f"{base}/{FILENAME}")
    ET.indent(root, "  ")
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_capabilities(web_dir, path=None, **kwargs) -> str:
    """Write :func:`capabilities` to ``<web_dir>/WMTSCapabilities.xml`` (atomically)."""
    path = os.fspath(path or os.path.join(os.fspath(web_dir), FILENAME))
    text = capabilities(web_dir, **kwargs)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
