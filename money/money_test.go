package money

import "testing"

func TestValidCode(t *testing.T) {
	for _, tc := range []struct {
		code string
		ok   bool
	}{
		{"CNY", true}, {"USD", true}, {"JPY", true}, {"XXX", false}, {"cny", false},
		{"", false}, {"MMF_UNITS", true}, {"POINTS", true}, {"ABC", false}, {"A-B-C-D", false},
		{"TOOLONGASSETCODE1", false},
	} {
		if got := ValidCode(tc.code); got != tc.ok {
			t.Errorf("ValidCode(%q) = %v, want %v", tc.code, got, tc.ok)
		}
	}
}

func TestValidAmount(t *testing.T) {
	for _, tc := range []struct {
		a  int64
		ok bool
	}{{0, false}, {-1, false}, {1, true}, {MaxAmount, true}, {MaxAmount + 1, false}} {
		if got := ValidAmount(tc.a); got != tc.ok {
			t.Errorf("ValidAmount(%d) = %v, want %v", tc.a, got, tc.ok)
		}
	}
	if c, ok := Lookup("JPY"); !ok || c.Exponent != 0 {
		t.Fatalf("Lookup(JPY) = %v, %v", c, ok)
	}
}

func TestNumericCodes(t *testing.T) {
	if len(iso4217Numeric) != len(iso4217) {
		t.Fatalf("%d numeric codes for %d currencies", len(iso4217Numeric), len(iso4217))
	}
	seen := map[string]string{}
	for a := range iso4217 {
		n, ok := NumericCode(a)
		if !ok || len(n) != 3 {
			t.Errorf("NumericCode(%s) = %q, %v", a, n, ok)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s share numeric code %s", a, other, n)
		}
		seen[n] = a
		if back, ok := AlphaCode(n); !ok || back != a {
			t.Errorf("AlphaCode(%s) = %q, want %s", n, back, a)
		}
	}
	if n, _ := NumericCode("CNY"); n != "156" {
		t.Errorf("CNY is %s", n)
	}
	if _, ok := AlphaCode("999"); ok {
		t.Error("AlphaCode(999) found")
	}
}
