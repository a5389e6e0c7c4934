package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// benchTimersJSON runs `fincore bench timers` with args and parses its last output line.
func benchTimersJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"bench", "timers"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench timers: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if !strings.Contains(stderr.String(), "fires/s; lateness p50") {
		t.Errorf("no human summary on stderr:\n%s", stderr.String())
	}
	return res
}

func TestBenchTimersPrintsJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark as a separate process")
	}
	res := benchTimersJSON(t, "--timers", "2000", "--rate", "1000", "--duration", "2s")
	num := func(k string) float64 {
		v, ok := res[k].(float64)
		if !ok {
			t.Fatalf("%s missing from %v", k, res)
		}
		return v
	}
	if res["backend"] != "sqlite" || num("timers") != 2000 || num("fired") != 2000 || num("early") != 0 {
		t.Errorf("result %v", res)
	}
	if num("fires_per_s") <= 0 || num("bytes_per_timer") <= 0 || num("lateness_p99_ms") < num("lateness_p50_ms") || num("lateness_p50_ms") < 0 {
		t.Errorf("figures %v", res)
	}

	// Bad settings are refused, and so is a data directory that already holds a database.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fincore.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--timers", "100", "--rate", "1000", "--duration", "1s"},
		{"--rate", "0"},
		{"--timers", "10", "--data", dir},
	} {
		if out, err := exec.Command(binPath, append([]string{"bench", "timers"}, args...)...).CombinedOutput(); err == nil {
			t.Errorf("bench timers %v succeeded:\n%s", args, out)
		}
	}
}

func TestBenchTimersPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark as a separate process")
	}
	url := os.Getenv("FINCORE_TEST_POSTGRES")
	if url == "" {
		t.Skip("FINCORE_TEST_POSTGRES is not set")
	}
	res := benchTimersJSON(t, "--postgres", url, "--timers", "1000", "--rate", "1000", "--duration", "1s")
	if res["backend"] != "postgres" || res["fired"] != 1000.0 || res["early"] != 0.0 {
		t.Errorf("result %v", res)
	}
}
