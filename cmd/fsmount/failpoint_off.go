//go:build !failpoints

package main

// failpointFromEnv is nil in production builds: no crash points exist.
func failpointFromEnv() func(string) { return nil }
