#!/usr/bin/env bash
# generate.sh writes the parquet fixtures of package hashing with DuckDB, a
# writer independent of the parquet-go reader the package uses. The files are
# committed; rerun this only to change them, then update the expectations in
# inspect_test.go (this script prints them as DuckDB reads them back).
#
# Usage: hashing/testdata/generate.sh   (needs node and test/client installed)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
duck="$here/../../test/client/duck.mjs"
cd "$here"

# run executes SQL statements in a fresh in-memory DuckDB and prints the last
# one's rows; write runs a COPY and drops its row count.
run() { node "$duck" "$@"; }
write() { run "$@" >/dev/null; }

# Three row groups (DuckDB's smallest is 2048 rows) whose time ranges are out
# of order: row group 1 holds the earliest minute, row group 0 the latest, so
# only a min of mins and a max of maxes across all groups gets the range right.
# Timestamps repeat every 50 rows so dictionary pages keep the file small.
bars="SELECT TIMESTAMP '2024-01-02 09:30:00.123456'
            + to_minutes([2, 0, 1][i // 2048 + 1] * 100 + (i % 2048) // 50) AS ts,
          (i % 10)::DOUBLE AS price,
          (i % 7)::BIGINT AS volume
   FROM range(5000) t(i)"

for codec in snappy zstd uncompressed; do
  write "COPY ($bars) TO 'ts_$codec.parquet' (FORMAT parquet, COMPRESSION $codec, ROW_GROUP_SIZE 2048)"
done

# The middle row group's time column is all NULL: it has no min or max.
write "COPY (SELECT CASE WHEN i // 2048 = 1 THEN NULL ELSE ts END AS ts, price
           FROM (SELECT row_number() OVER () - 1 AS i, * FROM ($bars)))
      TO 'ts_nulls.parquet' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 2048)"

# Millisecond timestamps around the epoch: the start is -99.75 s, whose floor
# is -100, not -99.
write "COPY (SELECT (TIMESTAMP '1969-12-31 23:58:20.250' + to_seconds(i))::TIMESTAMP_MS AS ts,
                  i AS n
           FROM range(200) t(i))
      TO 'ts_ms.parquet' (FORMAT parquet, COMPRESSION snappy)"

# Nanosecond timestamps one nanosecond short of the next second. Adding an
# INTERVAL would round them to microseconds, so the nanoseconds are summed.
write "COPY (SELECT make_timestamp_ns(epoch_ns(TIMESTAMP_NS '2024-03-10 12:00:00.999999999')
                                      + i * 1000000000) AS ts,
                  i AS n
           FROM range(100) t(i))
      TO 'ts_ns.parquet' (FORMAT parquet, COMPRESSION snappy)"

# No timestamp column: DATE and TIME are not timestamps.
write "COPY (SELECT i AS id, i * 0.5 AS x, 'sym' || (i % 3) AS symbol,
                  DATE '2024-01-01' + (i % 30)::INT AS day,
                  TIME '09:30:00' + to_minutes(i % 60) AS at
           FROM range(300) t(i))
      TO 'no_time.parquet' (FORMAT parquet, COMPRESSION snappy)"

# A time column but no rows: no statistics, so no range.
write "COPY (SELECT TIMESTAMP '2024-01-02 09:30:00' AS ts, 1.0::DOUBLE AS price WHERE false)
      TO 'empty_rows.parquet' (FORMAT parquet)"

# pandas style: the index was written as the last column, __index_level_0__,
# and is not the first timestamp column (event_ts is), so the pandas metadata
# alone picks it.
pandas_meta='{"index_columns": ["__index_level_0__"], "column_indexes": [{"name": null, "field_name": null, "pandas_type": "unicode", "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}], "columns": [{"name": "event_ts", "field_name": "event_ts", "pandas_type": "datetime", "numpy_type": "datetime64[ns]", "metadata": null}, {"name": "close", "field_name": "close", "pandas_type": "float64", "numpy_type": "float64", "metadata": null}, {"name": null, "field_name": "__index_level_0__", "pandas_type": "datetime", "numpy_type": "datetime64[ns]", "metadata": null}], "creator": {"library": "pyarrow", "version": "15.0.0"}, "pandas_version": "2.2.0"}'
frame="SELECT TIMESTAMP '2023-06-01 00:00:00' + to_hours(i) AS event_ts,
              (100 + i)::DOUBLE AS close,
              make_timestamp_ns(epoch_ns(TIMESTAMP_NS '2024-05-06 14:00:00.5')
                                + i * 60000000000) AS __index_level_0__
       FROM range(240) t(i)"
write "COPY ($frame) TO 'pandas_index.parquet'
      (FORMAT parquet, COMPRESSION snappy, KV_METADATA {pandas: '$pandas_meta'})"

# pandas with a RangeIndex: index_columns holds no column name, so the first
# timestamp column (event_ts) is the time column.
range_meta='{"index_columns": [{"kind": "range", "name": null, "start": 0, "stop": 240, "step": 1}], "column_indexes": [], "columns": [], "pandas_version": "2.2.0"}'
write "COPY ($frame) TO 'pandas_range_index.parquet'
      (FORMAT parquet, COMPRESSION snappy, KV_METADATA {pandas: '$range_meta'})"

# Print what DuckDB reads back, for the expectations in inspect_test.go.
for f in ts_snappy ts_zstd ts_uncompressed ts_nulls ts_ms ts_ns empty_rows; do
  run "SELECT '$f' AS file, count(*) AS rows,
              (SELECT count(DISTINCT row_group_id) FROM parquet_metadata('$f.parquet')) AS row_groups,
              floor(epoch(min(ts)))::BIGINT AS start_ts, floor(epoch(max(ts)))::BIGINT AS end_ts
       FROM '$f.parquet'"
done
for f in pandas_index pandas_range_index; do
  run "SELECT '$f' AS file, count(*) AS rows,
              floor(epoch(min(__index_level_0__)))::BIGINT AS index_start, floor(epoch(max(__index_level_0__)))::BIGINT AS index_end,
              floor(epoch(min(event_ts)))::BIGINT AS event_start, floor(epoch(max(event_ts)))::BIGINT AS event_end
       FROM '$f.parquet'"
done
run "SELECT 'no_time' AS file, count(*) AS rows FROM 'no_time.parquet'"
ls -l ./*.parquet
