package migration

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	ms, err := Load(fstest.MapFS{
		"m/0002_b.sql": {Data: []byte("B")},
		"m/0001_a.sql": {Data: []byte("A")},
		"m/0010_c.sql": {Data: []byte("C")},
	}, "m")
	if err != nil || len(ms) != 3 || ms[0].SQL != "A" || ms[1].Version != 2 || ms[2].Name != "0010_c.sql" {
		t.Fatalf("Load = %+v, %v", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no version":  {"m/x_a.sql": {}},
		"zero":        {"m/0000_a.sql": {}},
		"not sql":     {"m/0001_a.txt": {}},
		"dup version": {"m/0001_a.sql": {}, "m/1_b.sql": {}},
	} {
		if _, err := Load(fsys, "m"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
