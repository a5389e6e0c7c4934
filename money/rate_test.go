package money

import (
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in       string
		num, den int64
		str      string
	}{
		{"0", 0, 1, "0"},
		{"0.0", 0, 1, "0"},
		{"0.12", 3, 25, "0.12"},
		{"0.0005", 1, 2000, "0.0005"},
		{"1", 1, 1, "1"},
		{"007.50", 15, 2, "7.5"},
		{"0.0000000001", 1, 10_000_000_000, "0.0000000001"},
		{"1000", 1000, 1, "1000"},
		{"999.9999999999", 9999999999999, 10_000_000_000, "999.9999999999"},
	} {
		r, err := ParseRate(tc.in)
		if err != nil {
			t.Errorf("ParseRate(%q): %v", tc.in, err)
			continue
		}
		if r.Num() != tc.num || r.Den() != tc.den || r.String() != tc.str {
			t.Errorf("ParseRate(%q) = %d/%d %q, want %d/%d %q", tc.in, r.Num(), r.Den(), r, tc.num, tc.den, tc.str)
		}
	}
	for _, bad := range []string{"", ".5", "5.", "-0.1", "+0.1", "1e-3", "0.1%", " 0.1", "0,1", "0.00000000001", "1000.0000000001", "10000", "NaN", "0x10", "1.2.3"} {
		if _, err := ParseRate(bad); !errors.Is(err, ErrRate) {
			t.Errorf("ParseRate(%q) = %v, want ErrRate", bad, err)
		}
	}
}

func TestRateDivStringJSON(t *testing.T) {
	m := MustRate("0.12").Div(12)
	if m.Num() != 1 || m.Den() != 100 || m.String() != "0.01" {
		t.Errorf("0.12/12 = %d/%d %s", m.Num(), m.Den(), m)
	}
	if s := MustRate("0.1").Div(12).String(); s != "1/120" {
		t.Errorf("0.1/12 = %s, want 1/120", s)
	}
	b, _ := json.Marshal(struct{ R Rate }{MustRate("0.0005")})
	if string(b) != `{"R":"0.0005"}` {
		t.Errorf("marshal: %s", b)
	}
	var v struct{ A, B Rate }
	if err := json.Unmarshal([]byte(`{"A":"0.006","B":0.1000000001}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A.String() != "0.006" || v.B.Cmp(MustRate("0.1000000001")) != 0 {
		t.Errorf("unmarshal: %s %s", v.A, v.B)
	}
	for _, bad := range []string{`{"A":-1}`, `{"A":1e-3}`, `{"A":"x"}`, `{"A":true}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("unmarshal %s: no error", bad)
		}
	}
	if MustRate("0.5").Cmp(MustRate("0.50")) != 0 || MustRate("0.49").Cmp(MustRate("0.5")) != -1 || MustRate("1").Cmp(Rate{}) != 1 {
		t.Error("Cmp")
	}
}

func TestMulRateRounding(t *testing.T) {
	for _, tc := range []struct {
		amount int64
		rate   string
		m      Rounding
		want   int64
	}{
		{921151, "0.01", HalfUp, 9212},   // 9211.51
		{921150, "0.01", HalfUp, 9212},   // 9211.50 half up
		{921150, "0.01", HalfEven, 9212}, // 9211.50 to even 9212
		{921250, "0.01", HalfEven, 9212}, // 9212.50 to even 9212
		{921250, "0.01", HalfUp, 9213},
		{921299, "0.01", Down, 9212},
		{1, "0.5", HalfUp, 1},
		{1, "0.5", HalfEven, 0},
		{1, "0.4999999999", HalfUp, 0},
		{0, "0.3", HalfUp, 0},
		{MaxAmount, "1000", HalfUp, MaxAmount * 1000},
	} {
		got, ok := MulRate(tc.amount, MustRate(tc.rate), tc.m)
		if !ok || got != tc.want {
			t.Errorf("MulRate(%d, %s, %d) = %d %v, want %d", tc.amount, tc.rate, tc.m, got, ok, tc.want)
		}
	}
	if _, ok := MulRate(-1, MustRate("0.1"), HalfUp); ok {
		t.Error("negative amount accepted")
	}
	if _, ok := MulFrac(1<<62, 4, 1, HalfUp); ok {
		t.Error("overflow not reported")
	}
}

// TestMulRateMatchesBigRat: the 128-bit path and the big.Rat path agree on every rounding rule.
func TestMulRateMatchesBigRat(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		amount := rapid.Int64Range(0, MaxAmount).Draw(rt, "amount")
		num := rapid.Int64Range(0, 10_000_000_000).Draw(rt, "num")
		den := rapid.Int64Range(1, 120_000_000_000).Draw(rt, "den")
		m := Rounding(rapid.IntRange(0, 2).Draw(rt, "mode"))
		got, ok := MulFrac(amount, num, den, m)
		x := new(big.Rat).Mul(new(big.Rat).SetInt64(amount), big.NewRat(num, den))
		want, wok := RoundRat(x, m)
		if ok != wok || got != want {
			rt.Fatalf("MulFrac(%d, %d, %d, %d) = %d %v; big.Rat gives %d %v", amount, num, den, m, got, ok, want, wok)
		}
	})
}

// FuzzParseRate: whatever the text, a rate that parses writes back to text that parses to
// the same rate, within the bounds.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"0", "0.12", "0.0005", "1000", "007.50", "1e3", "-1", ".5", "0.00000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r || r.Cmp(Rate{RateMax, 1}) > 0 || r.Num() < 0 || r.Den() < 1 {
			t.Fatalf("%q -> %v (%d/%d) -> %v, %v", s, r, r.Num(), r.Den(), back, err)
		}
	})
}
