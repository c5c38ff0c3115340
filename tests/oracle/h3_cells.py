"""H3 cells of points according to the reference H3 library (PyPI h3).

Usage: h3_cells.py POINTS.csv
POINTS.csv has lines "lat,lon"; prints one line per point with its cells at resolutions 6 to
10 in hexadecimal, separated by commas.
"""

import sys

import h3

with open(sys.argv[1]) as fh:
    for line in fh:
        lat, lon = (float(v) for v in line.split(","))
        print(",".join(h3.latlng_to_cell(lat, lon, res) for res in range(6, 11)))
