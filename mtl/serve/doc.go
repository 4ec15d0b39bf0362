// Package serve is the HTTP front of an mtl.Extractor (`mtbert serve`): POST /v1/extract and
// /v1/pairs, GET /v1/model, health and readiness, Prometheus /metrics, and a web page at /
// (embedded from web/) for looking at a note's entities. Requests are planned in their
// handlers (mtl.Extractor.PlanNote, PlanPair) and batched dynamically: one goroutine runs the
// sequences of every queued request through mtl.Extractor.Run together, so concurrent
// requests share encoder passes and each answer is bit-identical to Extract's. Limits (queue,
// body size, sub-words per request and per pass, deadlines) and the bearer token are in
// Config. A new endpoint goes here.
package serve
