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
