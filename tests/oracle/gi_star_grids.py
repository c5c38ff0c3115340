"""Getis-Ord Gi* by PySAL over polygons: the reference for hot spots over grids.

Reads a GeoJSON FeatureCollection of grids (a gridscope KPI export) with GeoPandas, builds queen
contiguity from the polygons themselves (libpysal `Queen`: polygons sharing a vertex are
neighbours), binary weights, and runs esda.G_Local with star=True on the `reports` column.
Prints {"code": {"z": z, "p": p two-sided, "neighbours": n}} as JSON.

Usage: gi_star_grids.py GRIDS.geojson
"""
import json
import sys
import warnings

import geopandas
import numpy as np
from esda.getisord import G_Local
from libpysal.weights import Queen

frame = geopandas.read_file(sys.argv[1], engine="pyogrio")
values = np.asarray(frame["reports"].fillna(0), dtype=float)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    w = Queen.from_dataframe(frame, use_index=False, silence_warnings=True)
    g = G_Local(values, w, transform="B", permutations=0, star=True)
print(json.dumps({
    code: {"z": float(z), "p": float(2 * p), "neighbours": int(w.cardinalities[i])}
    for i, (code, z, p) in enumerate(zip(frame["code"], g.Zs, g.p_norm))
}))
