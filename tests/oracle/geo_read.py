"""Reads a GeoParquet, GeoJSON or CSV-with-WKT file with GeoPandas (pyarrow for Parquet, GDAL
through pyogrio for GeoJSON, shapely for WKT), independently of the server, and prints JSON:
the CRS, the column names and one object per row with its properties and geometry
(`__geometry__`, as a GeoJSON mapping with full-precision coordinates, `__valid__` from GEOS).

With --h3-of-points RES, each point row also gets `__h3__`: the cell of resolution RES that
the reference H3 library (h3 from PyPI) gives for it. With --h3-boundaries, each row with an
`h3` column gets `__h3_boundary_equal__`: whether its polygon is the cell's boundary as the
reference library draws it (vertex for vertex, within 1e-9 degrees).

Usage: geo_read.py FILE [--h3-of-points RES] [--h3-boundaries]
"""

import json
import math
import sys

import geopandas
import h3
import pandas
import shapely
import shapely.geometry
import shapely.wkt

path = sys.argv[1]
args = sys.argv[2:]

if path.endswith(".parquet"):
    frame = geopandas.read_parquet(path)
elif path.endswith(".geojson"):
    frame = geopandas.read_file(path, engine="pyogrio")
elif path.endswith(".csv"):
    table = pandas.read_csv(path, dtype=str, keep_default_na=False)
    if "wkt" in table.columns:
        geometry = geopandas.GeoSeries(table["wkt"].map(shapely.wkt.loads), crs="OGC:CRS84")
    else:
        geometry = geopandas.points_from_xy(table["lon"].astype(float), table["lat"].astype(float),
                                            crs="OGC:CRS84")
    frame = geopandas.GeoDataFrame(table, geometry=geometry)
else:
    sys.exit(f"unknown file type: {path}")

h3_res = int(args[args.index("--h3-of-points") + 1]) if "--h3-of-points" in args else None
check_boundaries = "--h3-boundaries" in args


def plain(value):
    """A JSON-friendly value: numbers stay numbers, NaN/NaT become null, others text."""
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "item"):
        return plain(value.item())
    if pandas.isna(value):
        return None
    return str(value)


def boundary_equal(cell, polygon):
    ring = list(polygon.exterior.coords)[:-1]
    reference = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
    return len(ring) == len(reference) and all(
        abs(a[0] - b[0]) < 1e-9 and abs(a[1] - b[1]) < 1e-9 for a, b in zip(ring, reference)
    )


rows = []
geometry_name = frame.geometry.name
for _, record in frame.iterrows():
    geometry = record[geometry_name]
    row = {k: plain(v) for k, v in record.items() if k != geometry_name}
    row["__geometry__"] = shapely.geometry.mapping(geometry)
    row["__valid__"] = bool(shapely.is_valid(geometry))
    if h3_res is not None and geometry.geom_type == "Point":
        row["__h3__"] = h3.latlng_to_cell(geometry.y, geometry.x, h3_res)
    if check_boundaries and "h3" in row:
        row["__h3_boundary_equal__"] = boundary_equal(row["h3"], geometry)
    rows.append(row)

crs = frame.crs
print(json.dumps({
    "crs": crs.to_string() if crs is not None else None,
    "geographic_wgs84": bool(crs is not None and crs.is_geographic and crs.equals("OGC:CRS84")
                             or crs is not None and crs.to_epsg() == 4326),
    "columns": [c for c in frame.columns if c != geometry_name],
    "rows": rows,
}, default=str))
