"""Independent checks of gridscope's vector tiles.

Usage: mvt_check.py TILE_DIR GRIDS_GEOJSON [SNAPSHOT_DIR]

TILE_DIR holds tiles named t_Z_X_Y.mvt (uncompressed, as served). Each tile is decoded twice,
with PyPI's mapbox-vector-tile and with GDAL's MVT driver (ogr2ogr), and the two decodings must
agree. Then, with GEOS (shapely 2):
  * every polygon is valid, rings have no repeated points and no zero area, exterior rings have
    positive area in tile coordinates (clockwise on screen) and holes negative, as MVT 2.1 says;
  * every feature's properties match the grid the server holds (GRIDS_GEOJSON), and its shape
    stays within a few tile units of that grid's true boundary clipped to the tile;
  * no grid big enough to see is missing from its layer;
  * shared borders stay shared: in every tile, the children of a grid cover exactly the
    parent's polygon in the layer above, with no gap and no overlap.
Prints a JSON summary; exits 1 listing the failures. With SNAPSHOT_DIR, writes a readable text
dump of each tile there.
"""

import csv
import json
import math
import os
import subprocess
import sys
import tempfile

import mapbox_vector_tile
import numpy as np
import shapely
from shapely.geometry import shape, box
from shapely.ops import unary_union

EXTENT = 4096
BUFFER = 64
MIN_FEATURE = 8
PARTITION = [("districts", "district"), ("level1", "1"), ("level2", "2"), ("level3", "3"), ("micro", "micro")]
LEVEL_OF_LAYER = dict(PARTITION + [("exclusive", "exclusive")])
PARENT_LAYER = {"level1": "districts", "level2": "level1", "level3": "level2", "micro": "level3"}

csv.field_size_limit(1 << 30)
failures = []


def fail(tile, msg):
    failures.append(f"{tile}: {msg}")


def to_tile(z, x, y):
    """A function projecting an (N, 2) array of lon/lat to this tile's units (y down)."""
    n = 2 ** z * EXTENT

    def f(c):
        lat = np.radians(np.clip(c[:, 1], -85.0511287798, 85.0511287798))
        wx = (c[:, 0] + 180.0) / 360.0 * n
        wy = (1.0 - np.log(np.tan(lat) + 1.0 / np.cos(lat)) / math.pi) / 2.0 * n
        return np.column_stack([wx - x * EXTENT, wy - y * EXTENT])

    return f


def signed_area(ring):
    a = 0.0
    for (x0, y0), (x1, y1) in zip(ring, ring[1:]):
        a += x0 * y1 - x1 * y0
    return a / 2.0


def polygons_of(geom):
    if geom["type"] == "Polygon":
        return [geom["coordinates"]]
    if geom["type"] == "MultiPolygon":
        return geom["coordinates"]
    return []


def decode_mapbox(data):
    layers = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    out = {}
    for name, layer in layers.items():
        if layer["extent"] != EXTENT:
            raise ValueError(f"layer {name} has extent {layer['extent']}")
        out[name] = layer["features"]
    return out


def decode_gdal(path, workdir):
    """Every layer through GDAL's MVT driver, as {layer: {id: (properties, geometry)}}."""
    outdir = os.path.join(workdir, "gdal")
    subprocess.run(["rm", "-rf", outdir], check=True)
    subprocess.run(
        ["ogr2ogr", "-q", "-f", "CSV", outdir, path, "-oo", "CLIP=NO", "-lco", "GEOMETRY=AS_WKT"],
        check=True,
        capture_output=True,
    )
    out = {}
    for fn in sorted(os.listdir(outdir)):
        layer = fn[:-4]
        feats = {}
        with open(os.path.join(outdir, fn), newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                geom = shapely.from_wkt(row.pop("WKT"))
                # GDAL reports ungeoreferenced tiles with y pointing up.
                geom = shapely.transform(geom, lambda c: c * [1, -1] + [0, EXTENT])
                fid = int(row.pop("mvt_id"))
                feats[fid] = ({k: v for k, v in row.items() if v != ""}, geom)
        out[layer] = feats
    return out


def check_rings(tile, layer, fid, geom):
    for poly in polygons_of(geom):
        for i, ring in enumerate(poly):
            pts = ring[:-1] if ring[0] == ring[-1] else ring
            if len(pts) < 3:
                fail(tile, f"{layer} #{fid}: ring with {len(pts)} points")
                continue
            for a, b in zip(pts, pts[1:] + pts[:1]):
                if a == b:
                    fail(tile, f"{layer} #{fid}: repeated point {a}")
            area = signed_area(list(pts) + [pts[0]])
            if area == 0:
                fail(tile, f"{layer} #{fid}: zero-area ring")
            elif (i == 0) != (area > 0):
                fail(tile, f"{layer} #{fid}: ring {i} has area {area}: wrong winding")


def snapshot(tile, layers):
    lines = [f"tile {tile}"]
    for name in sorted(layers):
        feats = sorted(layers[name], key=lambda f: f["id"])
        lines.append(f"layer {name}: {len(feats)} features")
        for f in feats:
            props = ", ".join(f"{k}={v}" for k, v in sorted(f["properties"].items()))
            g = f["geometry"]
            if g["type"] == "Point":
                lines.append(f"  #{f['id']} point {g['coordinates']} {props}")
                continue
            rings = [r for poly in polygons_of(g) for r in poly]
            desc = "; ".join(f"{len(r) - 1} pts area {signed_area(r):g} from {r[0]}" for r in rings)
            lines.append(f"  #{f['id']} {g['type'].lower()} [{desc}] {props}")
    return "\n".join(lines) + "\n"


def main():
    tile_dir, grids_path = sys.argv[1], sys.argv[2]
    snap_dir = sys.argv[3] if len(sys.argv) > 3 else None
    with open(grids_path, encoding="utf-8") as fh:
        grids = {f["properties"]["code"]: f for f in json.load(fh)["features"]}
    by_level = {}
    for code, f in grids.items():
        by_level.setdefault(f["properties"]["level"], []).append(code)
    shapes = {code: shape(f["geometry"]) for code, f in grids.items()}
    tree_codes = list(shapes)
    tree = shapely.STRtree([shapes[c] for c in tree_codes])

    stats = {"tiles": 0, "features": 0, "polygons_checked_against_grids": 0, "parents_checked": 0}
    work = tempfile.mkdtemp()
    square = box(-BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    for fn in sorted(os.listdir(tile_dir)):
        if not fn.endswith(".mvt"):
            continue
        z, x, y = (int(v) for v in fn[2:-4].split("_"))
        tile = f"{z}/{x}/{y}"
        path = os.path.join(tile_dir, fn)
        with open(path, "rb") as fh:
            data = fh.read()
        stats["tiles"] += 1
        mapbox = decode_mapbox(data)
        gdal = decode_gdal(path, work)
        if snap_dir:
            with open(os.path.join(snap_dir, f"{z}-{x}-{y}.txt"), "w", encoding="utf-8") as fh:
                fh.write(snapshot(tile, mapbox))
        if set(mapbox) != set(gdal):
            fail(tile, f"layers differ: mapbox-vector-tile {sorted(mapbox)}, GDAL {sorted(gdal)}")
            continue
        project = to_tile(z, x, y)
        # The bounding box of the tile (with its buffer) in lon/lat, to find candidate grids.
        n = 2 ** z
        lon = lambda px: (x + px / EXTENT) / n * 360.0 - 180.0
        lat = lambda py: math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + py / EXTENT) / n))))
        ll_box = box(lon(-BUFFER), lat(EXTENT + BUFFER), lon(EXTENT + BUFFER), lat(-BUFFER))
        in_tile = {}
        for name, feats in mapbox.items():
            ids = [f["id"] for f in feats]
            if len(set(ids)) != len(ids):
                fail(tile, f"{name}: duplicate feature ids")
            if sorted(ids) != sorted(gdal[name]):
                fail(tile, f"{name}: feature ids differ between decoders")
                continue
            polys = {}
            for f in feats:
                stats["features"] += 1
                props, ggeom = gdal[name][f["id"]]
                if props != {k: str(v) for k, v in f["properties"].items()}:
                    fail(tile, f"{name} #{f['id']}: properties differ: {props} vs {f['properties']}")
                code = f["properties"].get("code")
                g = grids.get(code)
                if g is None:
                    fail(tile, f"{name} #{f['id']}: code {code} is not a grid the server holds")
                    continue
                for k, v in f["properties"].items():
                    if k != "code" and str(g["properties"].get(k)) != str(v):
                        fail(tile, f"{name} {code}: {k}={v!r}, the server says {g['properties'].get(k)!r}")
                geom = shape(f["geometry"])
                if name == "labels":
                    px, py = f["geometry"]["coordinates"]
                    if not (0 <= px < EXTENT and 0 <= py < EXTENT):
                        fail(tile, f"label {code} at {px},{py} outside the tile")
                    pixel_deg = 360.0 / (2 ** z * EXTENT)
                    if shapes[code].distance(shapely.Point(*_inverse(z, x, y, px, py))) > 2 * pixel_deg:
                        fail(tile, f"label {code} is not inside its grid")
                    continue
                check_rings(tile, name, f["id"], f["geometry"])
                if not geom.is_valid:
                    fail(tile, f"{name} {code}: invalid: {shapely.is_valid_reason(geom)}")
                    continue
                if not ggeom.is_valid:
                    fail(tile, f"{name} {code}: GDAL decodes it invalid: {shapely.is_valid_reason(ggeom)}")
                    continue
                if geom.symmetric_difference(ggeom).area > 1e-6:
                    fail(tile, f"{name} {code}: geometry differs between decoders")
                if LEVEL_OF_LAYER.get(name) != g["properties"]["level"]:
                    fail(tile, f"{name} {code}: a level-{g['properties']['level']} grid in the wrong layer")
                truth = shapely.transform(shapes[code], project)
                truth = shapely.make_valid(truth).intersection(square)
                diff = geom.symmetric_difference(truth).area
                perimeter = max(truth.length, 1.0)
                if diff / perimeter > 3.0:
                    fail(tile, f"{name} {code}: drifts {diff / perimeter:.1f} units from its true boundary")
                stats["polygons_checked_against_grids"] += 1
                polys[code] = geom
            in_tile[name] = polys
        # Nothing big enough to see is missing.
        for name, polys in in_tile.items():
            level = LEVEL_OF_LAYER.get(name)
            if level is None:
                continue
            for i in tree.query(ll_box):
                code = tree_codes[i]
                if grids[code]["properties"]["level"] != level or code in polys:
                    continue
                truth = shapely.transform(shapes[code], project)
                minx, miny, maxx, maxy = truth.bounds
                if max(maxx - minx, maxy - miny) < MIN_FEATURE:
                    continue
                if shapely.make_valid(truth).intersection(square).area > 64:
                    fail(tile, f"{name}: grid {code} is visible here but missing")
        # Shared borders stay shared: children exactly fill their parent.
        for name, parent_layer in PARENT_LAYER.items():
            if name not in in_tile or parent_layer not in in_tile:
                continue
            kids = {}
            for code, geom in in_tile[name].items():
                kids.setdefault(grids[code]["properties"]["parent"], []).append(geom)
            for parent, geom in in_tile[parent_layer].items():
                children = kids.get(parent, [])
                total = sum(c.area for c in children)
                union = unary_union(children) if children else shapely.Polygon()
                slack = max(geom.area * 1e-3, 16.0)
                stats["parents_checked"] += 1
                if abs(union.area - geom.area) > slack:
                    fail(tile, f"{name}: children of {parent} cover {union.area:g} of its {geom.area:g} units²")
                if total - union.area > slack:
                    fail(tile, f"{name}: children of {parent} overlap by {total - union.area:g} units²")
    print(json.dumps({"failures": len(failures), **stats}))
    if failures:
        print("\n".join(failures[:60]), file=sys.stderr)
        sys.exit(1)


def _inverse(z, x, y, px, py):
    n = 2 ** z
    lon = (x + (px + 0.5) / EXTENT) / n * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + (py + 0.5) / EXTENT) / n))))
    return lon, lat


if __name__ == "__main__":
    main()
