package fincore_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTracingDependencies keeps the OpenTelemetry SDK and exporters at the edge: packages
// trace through the OpenTelemetry API only (a no-op until a program installs an SDK), and
// only platform/obs, which builds the SDK, and cmd/fincore, which wires it, may import it. A
// new package is covered without being listed.
func TestTracingDependencies(t *testing.T) {
	touchSources(t)
	const mod = "github.com/fincore/fincore"
	banned := []string{"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters"}
	allowed := []string{mod + "/platform/obs", mod + "/cmd/"}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkg := f[0]
		if pkg == allowed[0] || strings.HasPrefix(pkg, allowed[1]) {
			continue
		}
		checked++
		for _, dep := range f[1:] {
			for _, b := range banned {
				if dep == b || strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s depends on %s; trace through the OpenTelemetry API instead", pkg, dep)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d packages: go list output not understood", checked)
	}
}
