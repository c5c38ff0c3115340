"""Independent oracle for point assignment: GEOS (through shapely 2).

Reads the level-3 grids (GeoJSON) and the engine's answers (CSV: id,lon,lat,method,grid,distance_m)
and checks every answer against GEOS predicates:
  - a point in the interior of one grid (GEOS `within`) must be assigned to exactly that grid;
  - a point on a boundary (covered, but in no interior) must go to one of the covering grids;
  - a point covered by no grid must be snapped (within the tolerance, distance checked), or
    fall back to a higher area / the city queue only when no grid is within the tolerance.
Prints a summary and exits non-zero on any disagreement.
"""
import csv
import json
import math
import sys

import numpy as np
import shapely
from shapely import STRtree


def main(grids_path, answers_path, tolerance_m):
    with open(grids_path, encoding="utf-8") as f:
        features = json.load(f)["features"]
    codes = [f["properties"]["code"] for f in features]
    polys = shapely.from_geojson([json.dumps(f["geometry"]) for f in features])
    tree = STRtree(polys)

    rows = list(csv.DictReader(open(answers_path, encoding="utf-8")))
    pts = shapely.points(np.array([[float(r["lon"]), float(r["lat"])] for r in rows]))
    within = [set() for _ in rows]
    cover = [set() for _ in rows]
    for p, g in zip(*tree.query(pts, predicate="within")):
        within[p].add(codes[g])
    for p, g in zip(*tree.query(pts, predicate="intersects")):
        cover[p].add(codes[g])

    kinds = {"interior": 0, "boundary": 0, "uncovered": 0}
    bad = []
    for i, r in enumerate(rows):
        got, method = r["grid"], r["method"]
        if within[i]:
            kinds["interior"] += 1
            if len(within[i]) != 1 or got not in within[i] or method != "interior":
                bad.append((r["id"], "interior", sorted(within[i]), got, method))
        elif cover[i]:
            kinds["boundary"] += 1
            if got not in cover[i] or method != "boundary":
                bad.append((r["id"], "boundary", sorted(cover[i]), got, method))
        else:
            kinds["uncovered"] += 1
            lat = float(r["lat"])
            # Nearest grid distance in metres (local equirectangular, fine at tens of metres).
            near = tree.query_nearest(pts[i], return_distance=False)
            scale = 111195.0
            dists = []
            for g in near:
                a, b = shapely.shortest_line(pts[i], polys[g]).coords
                d = math.hypot((a[0] - b[0]) * scale * math.cos(math.radians(lat)), (a[1] - b[1]) * scale)
                dists.append((d, codes[g]))
            d, _ = min(dists)
            if method == "snapped":
                claimed = float(r["distance_m"])
                if abs(claimed - d) > 0.5 or d > tolerance_m + 0.5:
                    bad.append((r["id"], "snap", d, got, claimed))
            elif method in ("fallback", "city_queue"):
                if d < tolerance_m - 0.5:
                    bad.append((r["id"], "should snap", d, got, method))
            else:
                bad.append((r["id"], "uncovered", [], got, method))
    print(f"oracle: {len(rows)} points: {kinds['interior']} interior, {kinds['boundary']} on boundaries, "
          f"{kinds['uncovered']} in no grid; disagreements: {len(bad)}")
    for b in bad[:20]:
        print("  disagreement:", b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
