package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
)

// duck runs SQL statements through the repository's DuckDB client.
func duck(ctx context.Context, module string, sql ...string) error {
	client := filepath.Join(module, "test", "client")
	cmd := exec.CommandContext(ctx, "node", append([]string{"duck.mjs"}, sql...)...)
	cmd.Dir = client
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("duckdb: %w: %s", err, stderr.String())
	}
	return nil
}

// timedQueryJS runs a query once to warm up, then once more timed, and
// prints the time in milliseconds: node's start-up is not part of it.
const timedQueryJS = `
import { DuckDBInstance } from '@duckdb/node-api';
const sql = process.argv[1];
const instance = await DuckDBInstance.create(':memory:');
const conn = await instance.connect();
await conn.runAndReadAll(sql);
const t0 = performance.now();
const reader = await conn.runAndReadAll(sql);
const ms = performance.now() - t0;
console.log(JSON.stringify({ ms, rows: reader.getRowsJson() }));
conn.closeSync();
instance.closeSync();
`

// duckTimed is the warm time of sql in seconds, and its result rows.
func duckTimed(ctx context.Context, module, sql string) (float64, string, error) {
	cmd := exec.CommandContext(ctx, "node", "--input-type=module", "-e", timedQueryJS, "--", sql)
	// Bare imports resolve from the working directory's node_modules.
	cmd.Dir = filepath.Join(module, "test", "client")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, "", fmt.Errorf("duckdb %q: %w: %s", sql, err, stderr.String())
	}
	var out struct {
		MS   float64         `json:"ms"`
		Rows json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return 0, "", fmt.Errorf("duckdb output %q: %w", stdout.String(), err)
	}
	return out.MS / 1e3, string(out.Rows), nil
}
