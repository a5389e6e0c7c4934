package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchRoutingPrintsJSON(t *testing.T) {
	out, err := exec.Command(binPath, "bench", "routing", "--rate", "100", "--duration", "90s", "--drop-at", "30s").Output()
	if err != nil {
		t.Fatalf("bench routing: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		Payments int     `json:"payments"`
		Rate     float64 `json:"success_rate"`
		Oracle   float64 `json:"oracle_rate"`
		GapPP    float64 `json:"gap_pp"`
		Shift    float64 `json:"shift_s"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if res.Payments != 9000 || res.Rate <= 0 || res.Oracle < 0.9 || res.Shift < 0 {
		t.Errorf("result %+v", res)
	}
	if err := exec.Command(binPath, "bench", "routing", "--drop-at", "10m", "--duration", "1m").Run(); err == nil {
		t.Error("a drop after the end of the run was accepted")
	}
}

func TestBenchPaymentsPrintsJSON(t *testing.T) {
	heap := filepath.Join(t.TempDir(), "heap.prof")
	out, err := exec.Command(binPath, "bench", "payments", "--duration", "1s", "--clients", "4", "--memprofile", heap).Output()
	if err != nil {
		t.Fatalf("bench payments: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		Payments, Succeeded, Failed int64
		Accepted                    float64 `json:"accepted_per_s"`
		P99                         float64 `json:"accept_p99_ms"`
		CommitP99                   float64 `json:"commit_p99_ms"`
		CommitMax                   float64 `json:"commit_max_ms"`
		GCCycles                    int64   `json:"gc_cycles"`
		GCCPUPct                    float64 `json:"gc_cpu_pct"`
		SchedP99                    float64 `json:"sched_latency_p99_ms"`
		Allocs                      float64 `json:"allocs_per_payment"`
		AllocBytes                  float64 `json:"alloc_bytes_per_payment"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if res.Payments == 0 || res.Succeeded+res.Failed != res.Payments || res.Accepted <= 0 || res.P99 <= 0 {
		t.Errorf("result %+v", res)
	}
	// The breakdown: group commits, the collector (a second of payments allocates enough for
	// a few cycles), the scheduler.
	if res.CommitP99 <= 0 || res.CommitMax < res.CommitP99 || res.GCCycles <= 0 || res.GCCPUPct <= 0 || res.SchedP99 <= 0 ||
		res.Allocs <= 0 || res.AllocBytes < res.Allocs {
		t.Errorf("breakdown %+v", res)
	}
	if fi, err := os.Stat(heap); err != nil || fi.Size() == 0 {
		t.Errorf("heap profile: %v", err)
	}
}
