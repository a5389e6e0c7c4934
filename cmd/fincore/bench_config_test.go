package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fincore/fincore/bench"
)

// TestBenchConfig runs a tiny `fincore bench config` (two processes) on the embedded server
// and, if FINCORE_TEST_NATS is set, on that server, and checks its final JSON line.
func TestBenchConfig(t *testing.T) {
	for _, mode := range []string{"embedded", "external"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"bench", "config", "--sets", "20", "--watchers", "6", "--interval", "2ms"}
			if mode == "external" {
				url := os.Getenv("FINCORE_TEST_NATS")
				if url == "" {
					t.Skip("FINCORE_TEST_NATS not set")
				}
				args = append(args, "--nats", url)
			} else {
				args = append(args, "--data", t.TempDir())
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(binPath, args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: %v\n%s%s", args, err, stdout.String(), stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			var res bench.ConfigResult
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
				t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
			}
			if res.Count != 20*6 || res.Missing != 0 || res.Sets != 20 || res.Watchers != 6 || res.Processes != 2 || res.Bus != mode ||
				!(res.P50Ms > 0 && res.P50Ms <= res.P99Ms && res.P99Ms <= res.MaxMs) {
				t.Fatalf("result %+v\n%s", res, stderr.String())
			}
			if !strings.Contains(stderr.String(), "2 processes") {
				t.Fatalf("stderr: %s", stderr.String())
			}
		})
	}
}
