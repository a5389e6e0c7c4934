package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestBenchRiskHTTP runs `fincore bench risk --http` briefly: the load generator's client,
// with its API key, gets decisions from the authenticated server, none failing.
func TestBenchRiskHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark as a separate process")
	}
	cmd := exec.Command(binPath, "bench", "risk", "--http", "--clients", "4", "--duration", "1s", "--warmup", "0",
		"--users", "1000", "--devices", "200", "--rules", "50", "--trees", "10")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench risk: %v\n%s", err, stderr.String())
	}
	var res struct {
		Transport string  `json:"transport"`
		Decisions int64   `json:"decisions"`
		Failed    int64   `json:"failed"`
		CPU       float64 `json:"cpu_us_per_decision"`
	}
	lastLineJSON(t, out, &res)
	if res.Transport != "http" || res.Decisions == 0 || res.Failed != 0 || res.CPU <= 0 {
		t.Fatalf("result %+v\n%s", res, stderr.String())
	}
}

// lastLineJSON decodes the last line of a command's output (a benchmark's result) into v.
func lastLineJSON(t *testing.T, out []byte, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
}
