package fincore_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// touchSources reads every Go source and the module files, so that the test cache knows this
// test depends on them (it cannot see what the go list subprocess reads).
func touchSources(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			_, err := os.ReadFile(path)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDependencies keeps dependencies pointing downward (DESIGN.md section 2): domain packages
// never import the HTTP layer, a storage adapter or a database driver; adapters never import
// each other or the HTTP layer. Only cmd/fincore wires concrete adapters together.
func TestDependencies(t *testing.T) {
	touchSources(t)
	const mod = "github.com/fincore/fincore/"
	drivers := []string{"database/sql", "github.com/jackc/pgx", "modernc.org/sqlite"}
	rules := []struct {
		pkg    string
		banned []string
	}{
		{"money", append([]string{"net/http", mod + "ledger", mod + "httpapi", mod + "store/"}, drivers...)},
		{"apierror", append([]string{"net/http", mod + "ledger", mod + "httpapi", mod + "store/"}, drivers...)},
		{"ledger", append([]string{"net/http", mod + "httpapi", mod + "store/", mod + "bench", mod + "cmd/"}, drivers...)},
		// The risk engine reaches storage through its Store interface and knows no HTTP; it
		// reports to metrics through its Observer, not a metrics library.
		{"risk", append([]string{"net/http", mod + "httpapi", mod + "store/", mod + "cmd/", mod + "ledger", "github.com/prometheus"}, drivers...)},
		{"store/sqlite", []string{mod + "httpapi", mod + "store/postgres", "github.com/jackc/pgx", "net/http"}},
		{"store/postgres", []string{mod + "httpapi", mod + "store/sqlite", "modernc.org/sqlite", "net/http"}},
		{"httpapi", append([]string{mod + "store/", mod + "cmd/"}, drivers...)},
		// A bank adapter speaks to its bank; it knows nothing of fincore's storage, HTTP API or
		// ledger (the payment service does the bookkeeping).
		{"bank", append([]string{mod + "ledger", mod + "httpapi", mod + "store/", mod + "cmd/"}, drivers...)},
		// The payment service moves money only through the ledger, talks to banks only
		// through bank.Channel, and knows no storage adapter or HTTP.
		{"payment", append([]string{"net/http", mod + "httpapi", mod + "store/", mod + "cmd/", mod + "bank/sim", mod + "bank/iso8583"}, drivers...)},
		// The router is pure computation over what it is told.
		{"payment/route", append([]string{"net/http", mod + "ledger", mod + "httpapi", mod + "store/", mod + "cmd/"}, drivers...)},
		{"bench", append([]string{mod + "store/", mod + "httpapi"}, drivers...)},
		// The outbox knows neither the ledger nor the bus (it publishes through an interface),
		// so that storage adapters can implement its Store.
		{"platform/outbox", append([]string{"net/http", mod + "ledger", mod + "platform/bus", mod + "httpapi", mod + "store/", mod + "cmd/"}, drivers...)},
		// timer delivers to the bus through its own Publisher interface, never the package.
		{"platform/timer", append([]string{"net/http", mod + "ledger", mod + "platform/bus", mod + "httpapi", mod + "store/", mod + "cmd/"}, drivers...)},
		// credit is a domain package: it reaches storage and the bus only through interfaces.
		{"credit", append([]string{"net/http", mod + "httpapi", mod + "store/", mod + "cmd/", mod + "platform/bus"}, drivers...)},
		// The credit service commits through the ledger engine and reads its store interface.
		{"credit/service", append([]string{"net/http", mod + "httpapi", mod + "store/", mod + "cmd/", mod + "platform/bus"}, drivers...)},
		// auth decides (keys, scopes, limits, switches, audit); HTTP and SQL are the adapters'.
		{"platform/auth", append([]string{"net/http", mod + "ledger", mod + "httpapi", mod + "store/", mod + "cmd/"}, drivers...)},
		// lock knows no storage, driver or bus; its backends live in the adapters and natskv.
		{"platform/lock", append([]string{"net/http", mod + "ledger", mod + "platform/bus", mod + "httpapi", mod + "store/", mod + "cmd/", "github.com/nats-io"}, drivers...)},
		{"platform/lock/natskv", append([]string{mod + "ledger", mod + "httpapi", mod + "store/", mod + "cmd/"}, drivers...)},
		// config works on a JetStream connection, not the bus package, and knows no module (net/http
		// comes in with the NATS client).
		{"platform/config", append([]string{mod + "ledger", mod + "platform/bus", mod + "httpapi", mod + "store/", mod + "cmd/"}, drivers...)},
		// idem stores keys through its Store interface and knows nothing of HTTP.
		{"platform/idem", append([]string{"net/http", mod + "ledger", mod + "httpapi", mod + "store/", mod + "cmd/"}, drivers...)},
		{"platform/bus", append([]string{mod + "ledger", mod + "httpapi", mod + "store/", mod + "cmd/"}, drivers...)},
		// obs sees the ledger through its Store interface and hooks, never an adapter or a
		// driver (database/sql itself comes in with client_golang's collectors).
		{"platform/obs", []string{mod + "store/", mod + "cmd/", "github.com/jackc/pgx", "modernc.org/sqlite"}},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./"+r.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", r.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range r.banned {
				if dep == b || strings.HasPrefix(dep, b) && (strings.HasSuffix(b, "/") || strings.HasPrefix(dep, b+"/")) {
					t.Errorf("%s depends on %s, which it must not", r.pkg, dep)
				}
			}
		}
	}
}
