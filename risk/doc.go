// Package risk is fincore's real-time risk decision engine (DESIGN.md R1–R6): versioned rule
// sets of sliding-window features, lists, models and rules written in expr-lang expressions,
// evaluated for each event into an accept, review or reject decision with its reasons.
//
// A rule set document is parsed by ParseRuleSet and validated and compiled by Compile; the
// Engine keeps the feature state, the active and shadow versions of each rule set, and logs
// every event and decision through its Store.
package risk
