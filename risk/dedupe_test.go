package risk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestRepeatsAnsweredFromMemos: a repeated event gets the decision it got the first time, in
// full (the same API answer and explained decision), also after its rule set version was
// replaced; a second rule set's decision for the same id is remembered too; rule errors are
// kept; and past the de-duplication bound the oldest ids are forgotten.
func TestRepeatsAnsweredFromMemos(t *testing.T) {
	ctx := context.Background()
	e, _ := openPay(t)
	if _, err := e.PutRuleSet(ctx, "other", []byte(strings.Replace(payRules, "score: 40", "score: 70", 1)+"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Activate(ctx, "other", 1, 0); err != nil {
		t.Fatal(err)
	}
	type answer struct{ brief, full string }
	first := map[string]answer{}
	// decideAll decides m0 ... m39 and compares each answer with the first one given.
	decideAll := func(when string) {
		t.Helper()
		for i := range 40 {
			id := fmt.Sprint("m", i)
			d, err := e.DecideBrief(ctx, "pay", event(t, id, "payment", time.Duration(i)*time.Second, fieldsOf(i)))
			if err != nil {
				t.Fatal(err)
			}
			full, _ := jsonOf(d.Explain())
			got := answer{string(d.AppendJSON(nil)), full}
			if _, ok := first[id]; !ok {
				first[id] = got
				if (i%7 == 0) != (len(d.Errors) == 1) {
					t.Fatalf("%s: rule errors %+v", id, d.Errors)
				}
			}
			if !reflect.DeepEqual(got, first[id]) {
				t.Fatalf("%s: repeat of %s:\n%+v\nfirst:\n%+v", when, id, got, first[id])
			}
		}
	}
	decideAll("first")
	decideAll("repeat")
	// The other rule set decides m1 once, and answers its repeat the same.
	ev := event(t, "m1", "payment", time.Second, fieldsOf(1))
	o1, err := e.DecideBrief(ctx, "other", ev)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := e.DecideBrief(ctx, "other", ev)
	if err != nil || string(o1.AppendJSON(nil)) != string(o2.AppendJSON(nil)) || o1.RuleSet != "other" {
		t.Fatalf("other rule set: %s / %s %v", o1.AppendJSON(nil), o2.AppendJSON(nil), err)
	}
	// A new version of pay replaces the one that decided: repeats still get the old answers.
	if _, err := e.PutRuleSet(ctx, "pay", []byte(strings.Replace(payRules, "reason: velocity_1h", "reason: changed", 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Activate(ctx, "pay", 2, 0); err != nil {
		t.Fatal(err)
	}
	decideAll("after a new version")
	decideAll("from the compiled cache")
}

func jsonOf(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// fieldsOf are the fields of event m<i>: every seventh has no amount, so rule R6 fails for it.
func fieldsOf(i int) string {
	if i%7 == 0 {
		return fmt.Sprintf(`,"user_id":"u%d","device_id":"d1"`, i%3)
	}
	return fmt.Sprintf(`,"user_id":"u%d","device_id":"d1","amount":%d`, i%3, 500+100*i)
}
