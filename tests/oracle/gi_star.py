"""Getis-Ord Gi* by PySAL, the reference implementation, for cells and counts given as JSON.

Reads {"cells": [h3 cell ids], "values": [numbers]} on stdin; builds each cell's neighbours with
the reference H3 library (the ring at distance 1, within the given cells), binary weights, and
runs esda.G_Local with star=True (the cell itself included). Prints {"z": [...], "p": [...]},
p two-sided under the normal approximation.
"""
import json
import sys
import warnings

import h3
import numpy as np
from esda.getisord import G_Local
from libpysal.weights import W

data = json.load(sys.stdin)
cells = data["cells"]
values = np.asarray(data["values"], dtype=float)
index = {c: i for i, c in enumerate(cells)}
neighbours = {
    i: [index[n] for n in h3.grid_disk(c, 1) if n != c and n in index]
    for i, c in enumerate(cells)
}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    w = W(neighbours, silence_warnings=True)
    g = G_Local(values, w, transform="B", permutations=0, star=True)
print(json.dumps({"z": [float(z) for z in g.Zs], "p": [float(2 * p) for p in g.p_norm]}))
