// duck.mjs runs SQL in an in-memory DuckDB and prints the last statement's
// rows as JSON, one object per line. Tests use it as the independent parquet
// client: node duck.mjs "COPY (...) TO '/mnt/AAPL/k.parquet'" "SELECT ...".
import { DuckDBInstance } from '@duckdb/node-api';

const statements = process.argv.slice(2);
if (statements.length === 0) {
  console.error('usage: node duck.mjs SQL [SQL...]');
  process.exit(2);
}

const instance = await DuckDBInstance.create(':memory:');
const conn = await instance.connect();
try {
  let reader;
  for (const sql of statements) {
    reader = await conn.runAndReadAll(sql);
  }
  for (const row of reader.getRowObjectsJson()) {
    console.log(JSON.stringify(row));
  }
} catch (err) {
  console.error(String(err && err.message ? err.message : err));
  process.exitCode = 1;
} finally {
  conn.closeSync();
  instance.closeSync();
}
