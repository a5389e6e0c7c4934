package rulesets_test

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/rulesets"
	"github.com/fincore/fincore/store/storetest"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// step is one event of a scenario, at an offset from t0, with its fields as JSON members.
type step struct {
	typ    string
	at     time.Duration
	fields string
}

// scenario runs events through a pack and checks the last event's decision.
type scenario struct {
	name   string
	lists  map[string][]string
	steps  []step
	reason string // the reason the last decision must carry; "" = none at all
}

func run(t *testing.T, pack string, sc scenario) *risk.Decision {
	t.Helper()
	ctx := context.Background()
	src, err := fs.ReadFile(rulesets.Packs, pack)
	if err != nil {
		t.Fatal(err)
	}
	e, err := risk.Open(ctx, risk.DiscardStore(), risk.Config{Logger: storetest.QuietLogger(), SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	name := strings.TrimSuffix(pack, ".yaml")
	if _, err := e.PutRuleSet(ctx, strings.ReplaceAll(name, "_", "-"), src); err != nil {
		t.Fatalf("%s: %v", pack, err)
	}
	if _, err := e.Activate(ctx, strings.ReplaceAll(name, "_", "-"), 1, 0); err != nil {
		t.Fatal(err)
	}
	for l, items := range sc.lists {
		if _, err := e.AddListItems(ctx, l, items); err != nil {
			t.Fatal(err)
		}
	}
	var d *risk.Decision
	for i, s := range sc.steps {
		raw := fmt.Sprintf(`{"id":"%s-%d","type":%q,"timestamp":%q%s}`, sc.name, i, s.typ, t0.Add(s.at).Format(time.RFC3339), s.fields)
		ev, err := risk.ParseEvent([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if d, err = e.Decide(ctx, strings.ReplaceAll(name, "_", "-"), ev); err != nil {
			t.Fatal(err)
		}
		if len(d.Errors) > 0 {
			t.Fatalf("%s step %d: rule errors %+v", sc.name, i, d.Errors)
		}
	}
	var reasons []string
	for _, r := range d.Reasons {
		reasons = append(reasons, r.Reason)
	}
	if sc.reason == "" {
		if len(reasons) != 0 || d.Decision != risk.Accept {
			t.Fatalf("%s: benign traffic flagged: %s %v", sc.name, d.Decision, reasons)
		}
	} else if !slices.Contains(reasons, sc.reason) || d.Decision == risk.Accept {
		t.Fatalf("%s: want %s flagged, got %s %v (features %v)", sc.name, sc.reason, d.Decision, reasons, d.Features)
	}
	return d
}

// repeat makes n steps of one kind, every gap.
func repeat(n int, typ string, gap time.Duration, fields func(i int) string) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = step{typ, time.Duration(i) * gap, fields(i)}
	}
	return out
}

func TestEveryPackCompiles(t *testing.T) {
	names, err := fs.Glob(rulesets.Packs, "*.yaml")
	if err != nil || len(names) != 6 {
		t.Fatalf("packs %v %v", names, err)
	}
	for _, n := range names {
		src, _ := fs.ReadFile(rulesets.Packs, n)
		rs, err := risk.ParseRuleSet(src)
		if err == nil {
			_, err = risk.Compile(rs, risk.CompileOptions{})
		}
		if err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func TestCashOut(t *testing.T) {
	run(t, "cash_out.yaml", scenario{name: "colluding", reason: "cashout_merchant_pattern", steps: repeat(6, "payment", 5*time.Minute, func(i int) string {
		return fmt.Sprintf(`,"user_id":"u%d","merchant_id":"m1","amount":500000`, i%3)
	})})
	run(t, "cash_out.yaml", scenario{name: "drain", reason: "cashout_repeat_large", steps: repeat(3, "payment", time.Hour, func(i int) string {
		return `,"user_id":"u9","merchant_id":"m2","amount":250050`
	})})
	run(t, "cash_out.yaml", scenario{name: "shopper", steps: repeat(4, "payment", time.Hour, func(i int) string {
		return fmt.Sprintf(`,"user_id":"u5","merchant_id":"m%d","amount":%d`, i, 12345+i)
	})})
}

func TestIdentityAnomaly(t *testing.T) {
	run(t, "identity_anomaly.yaml", scenario{name: "shared-device", reason: "identity_shared_device", steps: repeat(3, "login", time.Minute, func(i int) string {
		return fmt.Sprintf(`,"user_id":"u%d","device_id":"d1"`, i)
	})})
	run(t, "identity_anomaly.yaml", scenario{name: "phone-ids", reason: "identity_phone_many_ids", steps: repeat(2, "credit_application", time.Hour, func(i int) string {
		return fmt.Sprintf(`,"user_id":"u%d","device_id":"d%d","phone":"138001","id_number":"ID%d","name_match":true`, i, i, i)
	})})
	run(t, "identity_anomaly.yaml", scenario{name: "mismatch", reason: "identity_name_mismatch", steps: []step{{"credit_application", 0, `,"user_id":"u1","device_id":"d1","phone":"1","id_number":"ID1","name_match":false`}}})
	run(t, "identity_anomaly.yaml", scenario{name: "honest", steps: []step{{"credit_application", 0, `,"user_id":"u1","device_id":"d1","phone":"1","id_number":"ID1","name_match":true`}}})
}

func TestAddressRisk(t *testing.T) {
	run(t, "address_risk.yaml", scenario{name: "drop", reason: "address_drop_point", steps: repeat(5, "order", 3*time.Hour, func(i int) string {
		return fmt.Sprintf(`,"user_id":"u%d","address_hash":"A1","amount":1000`, i)
	})})
	run(t, "address_risk.yaml", scenario{name: "grey", reason: "address_grey_list", lists: map[string][]string{"grey_addresses": {"A7"}},
		steps: []step{{"payment", 0, `,"user_id":"u1","address_hash":"A7","amount":1000`}}})
	run(t, "address_risk.yaml", scenario{name: "home", steps: repeat(3, "order", 24*time.Hour, func(i int) string {
		return `,"user_id":"u1","address_hash":"A2","amount":1000,"ip_city":"Beijing","address_city":"Beijing"`
	})})
}

func TestOnlineHighRisk(t *testing.T) {
	steps := []step{{"password_change", 0, `,"user_id":"u1","ip":"1.1.1.1"`}, {"payment", 10 * time.Minute, `,"user_id":"u1","ip":"1.1.1.1","amount":300000`}}
	run(t, "online_high_risk.yaml", scenario{name: "takeover", reason: "online_takeover_payment", steps: steps})
	run(t, "online_high_risk.yaml", scenario{name: "brute", reason: "online_brute_force", steps: repeat(5, "login_failed", time.Minute, func(i int) string {
		return `,"user_id":"u2","ip":"2.2.2.2"`
	})})
	// The same payment two hours after the change is ordinary.
	steps[1].at = 2 * time.Hour
	run(t, "online_high_risk.yaml", scenario{name: "later", steps: steps})
}

func TestMaliciousOps(t *testing.T) {
	run(t, "malicious_ops.yaml", scenario{name: "coupons", reason: "malicious_coupon_accounts", steps: repeat(3, "coupon_use", time.Hour, func(i int) string {
		return fmt.Sprintf(`,"user_id":"u%d","device_id":"d1"`, i)
	})})
	run(t, "malicious_ops.yaml", scenario{name: "farm", reason: "malicious_registration_farm", steps: repeat(10, "register", time.Minute, func(i int) string {
		return fmt.Sprintf(`,"user_id":"n%d","ip":"9.9.9.9"`, i)
	})})
	run(t, "malicious_ops.yaml", scenario{name: "script", reason: "malicious_scripted_burst", steps: repeat(30, "page_view", time.Second, func(i int) string {
		return `,"user_id":"bot"`
	})})
	run(t, "malicious_ops.yaml", scenario{name: "user", steps: repeat(5, "page_view", 30*time.Second, func(i int) string {
		return `,"user_id":"human","device_id":"d2"`
	})})
}

func TestDeviceHabit(t *testing.T) {
	history := repeat(5, "payment", 24*time.Hour, func(i int) string {
		return `,"user_id":"u1","device_id":"d1","amount":10000,"local_hour":14`
	})
	spike := append(slices.Clone(history), step{"payment", 6 * 24 * time.Hour, `,"user_id":"u1","device_id":"d1","amount":200000,"local_hour":14`})
	run(t, "device_habit.yaml", scenario{name: "spike", reason: "habit_amount_spike", steps: spike})
	run(t, "device_habit.yaml", scenario{name: "emulator", reason: "device_tampered", steps: []step{{"login", 0, `,"user_id":"u2","device_id":"e1","emulator":true`}}})
	usual := append(slices.Clone(history), step{"payment", 6 * 24 * time.Hour, `,"user_id":"u1","device_id":"d1","amount":12000,"local_hour":15`})
	run(t, "device_habit.yaml", scenario{name: "usual", steps: usual})
}
