"""Decodes vector tiles with PyPI's mapbox-vector-tile and prints them as JSON.

Usage: mvt_dump.py TILE.mvt [TILE.mvt ...]
Prints one JSON object per tile: {layer: [{"id", "properties", "geometry"}]}, in tile
coordinates (y down). With H3_POINTS=lat,lon,res;... in the environment, also prints the H3 cell
of each point according to the reference H3 library (PyPI h3).
"""

import json
import os
import sys

import mapbox_vector_tile

for path in sys.argv[1:]:
    with open(path, "rb") as fh:
        layers = mapbox_vector_tile.decode(fh.read(), default_options={"y_coord_down": True})
    print(json.dumps({name: layer["features"] for name, layer in layers.items()}))

if os.environ.get("H3_POINTS"):
    import h3

    cells = []
    for item in os.environ["H3_POINTS"].split(";"):
        lat, lon, res = item.split(",")
        cells.append(h3.latlng_to_cell(float(lat), float(lon), int(res)))
    print(json.dumps({"h3": cells}))
