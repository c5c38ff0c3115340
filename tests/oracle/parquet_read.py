"""Reads a Parquet file with pyarrow (Apache Arrow's own reader, independent of DuckDB) and
prints JSON: the row count, the column names and types, and the rows as objects.

Usage: parquet_read.py FILE.parquet
"""

import json
import sys

import pyarrow.parquet as pq

table = pq.read_table(sys.argv[1])
print(json.dumps({
    "num_rows": table.num_rows,
    "columns": {f.name: str(f.type) for f in table.schema},
    "rows": table.to_pylist(),
}, default=str))
