// Package rulesets ships fincore's anti-fraud rule packs (DESIGN.md R6), one rule set per
// area the seeds name: cash-out, identity anomaly, address risk, high-risk online behaviour,
// malicious operations, and device or habit anomaly. Each is a starting point to upload with
// PUT /v1/risk/rulesets/{name} and tune by backtest; each has a test that shows it catching
// the pattern it targets.
package rulesets

import "embed"

// Packs holds the rule pack files (*.yaml).
//
//go:embed *.yaml
var Packs embed.FS
