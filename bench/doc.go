// Package bench holds mtbert's end-to-end workloads and their reports: each function runs one
// workload on seeded inputs, times it (median of several runs after a warm-up) and checks its
// result against a reference, returning a JSON-ready record for `mtbert bench`.
package bench
