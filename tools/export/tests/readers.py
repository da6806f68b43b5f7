"""Reads a weightlog export with DuckDB and with pyarrow and checks it against what the
Rust test computed from the log: row counts per table, the sum of u16 weights per decision
and the Merkle root in every file's metadata.

Usage: python3 readers.py OUTDIR EXPECTED.json
"""
import json
import pathlib
import sys

import duckdb
import pyarrow.compute as compute
import pyarrow.dataset as dataset
import pyarrow.parquet as parquet

out_dir = pathlib.Path(sys.argv[1])
expected = json.loads(pathlib.Path(sys.argv[2]).read_text())


def check(what, found, wanted):
    if found != wanted:
        raise AssertionError(f"{what}: found {found!r}, expected {wanted!r}")


def glob(table):
    return str(out_dir / table / "**" / "*.parquet")


# DuckDB
connection = duckdb.connect()
for table, rows in expected["rows"].items():
    (count,) = connection.execute(
        "SELECT count(*) FROM read_parquet(?, hive_partitioning = true)", [glob(table)]
    ).fetchone()
    check(f"duckdb {table} rows", count, rows)
sums = connection.execute(
    "SELECT seq, sum(u16_weight)::BIGINT FROM read_parquet(?) GROUP BY seq ORDER BY seq",
    [glob("weights")],
).fetchall()
check("duckdb weight sums", {str(seq): total for seq, total in sums}, expected["weight_sums"])
# Every file names the checkpoint it was cut from; its root must be the signed root at
# that size (the two incremental runs cite different checkpoints).
stated = {}
for file_name, key, value in connection.execute(
    "SELECT file_name, decode(key), decode(value) FROM parquet_kv_metadata(?)",
    [str(out_dir / "**" / "*.parquet")],
).fetchall():
    stated.setdefault(file_name, {})[key] = value
check("duckdb files with metadata", len(stated), expected["files"])
for file_name, pairs in stated.items():
    check(
        f"duckdb {file_name} root",
        pairs["weightlog.merkle_root"],
        expected["roots"][pairs["weightlog.log_size"]],
    )
# The README's query: weights over time for one uid.
history = connection.execute(
    "SELECT timestamp::VARCHAR, block, u16_weight FROM read_parquet(?) WHERE uid = 3 ORDER BY seq",
    [glob("weights")],
).fetchall()
check("duckdb uid 3 decisions", len(history), expected["uid_3_decisions"])

# pyarrow
for table, rows in expected["rows"].items():
    files = sorted((out_dir / table).rglob("*.parquet"))
    found = dataset.dataset([str(path) for path in files], format="parquet").count_rows()
    check(f"pyarrow {table} rows", found, rows)
    for path in files:
        pairs = parquet.read_metadata(path).metadata
        size = pairs[b"weightlog.log_size"].decode()
        check(f"pyarrow {path} root", pairs[b"weightlog.merkle_root"].decode(), expected["roots"][size])
        check(f"pyarrow {path} origin", pairs[b"weightlog.origin"].decode(), expected["origin"])
weights = parquet.read_table(str(out_dir / "weights"))
grouped = weights.group_by("seq").aggregate([("u16_weight", "sum")])
check(
    "pyarrow weight sums",
    {
        str(seq): total
        for seq, total in zip(
            grouped.column("seq").to_pylist(), grouped.column("u16_weight_sum").to_pylist()
        )
    },
    expected["weight_sums"],
)
vectors = parquet.read_table(str(out_dir / "embeddings" / "dimension=384"))
check("pyarrow vector width", vectors.schema.field("vector").type.list_size, 384)
check("pyarrow first uid", compute.min(weights.column("uid")).as_py(), 0)
print("readers ok")
