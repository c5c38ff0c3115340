"""Reads a PMTiles archive back with PyPI's pmtiles reader.

Usage: pmtiles_check.py ARCHIVE z/x/y [z/x/y ...]
Prints JSON: the header fields that matter, the metadata, and for each tile asked for its
layers decoded with mapbox-vector-tile (null when the archive has no such tile).
"""

import gzip
import json
import sys

import mapbox_vector_tile
from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, TileType

with open(sys.argv[1], "rb") as fh:
    reader = Reader(MmapSource(fh))
    header = reader.header()
    out = {
        "min_zoom": header["min_zoom"],
        "max_zoom": header["max_zoom"],
        "tile_type_mvt": header["tile_type"] == TileType.MVT,
        "tile_compression_gzip": header["tile_compression"] == Compression.GZIP,
        "metadata": reader.metadata(),
        "tiles": {},
    }
    for zxy in sys.argv[2:]:
        z, x, y = (int(v) for v in zxy.split("/"))
        data = reader.get(z, x, y)
        if data is None:
            out["tiles"][zxy] = None
            continue
        layers = mapbox_vector_tile.decode(gzip.decompress(data), default_options={"y_coord_down": True})
        out["tiles"][zxy] = {name: layer["features"] for name, layer in layers.items()}
print(json.dumps(out))
