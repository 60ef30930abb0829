package regconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "registries.conf")
	os.WriteFile(base, []byte("unqualified-search-registries = [\"docker.io\"]\n[[registry]]\nlocation = \"10.0.0.1:5000\"\ninsecure = false"), 0o644)
	for _, tc := range []struct {
		name, base string
		insecure   []string
		want       []string
		wantNot    []string
	}{
		{"missing base", filepath.Join(dir, "none"), []string{"127.0.0.1:5115"},
			[]string{"[[registry]]\nlocation = \"127.0.0.1:5115\"\ninsecure = true\n"}, []string{"docker.io"}},
		{"base kept, its own entry untouched", base, []string{"127.0.0.1:5115", "10.0.0.1:5000", "127.0.0.1:5115"},
			[]string{"unqualified-search-registries = [\"docker.io\"]", "insecure = false\n", "location = \"127.0.0.1:5115\"\ninsecure = true"},
			[]string{"location = \"10.0.0.1:5000\"\ninsecure = true"}},
		{"nothing insecure", base, nil, []string{"docker.io"}, []string{"insecure = true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Generate(tc.base, tc.insecure)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(string(got), w) {
					t.Errorf("has %q:\n%s", w, got)
				}
			}
			if n := strings.Count(string(got), "location = \"127.0.0.1:5115\""); len(tc.insecure) > 0 && n != 1 {
				t.Errorf("127.0.0.1:5115 named %d times", n)
			}
		})
	}
}

func TestBase(t *testing.T) {
	for _, tc := range []struct{ name, env, want string }{
		{"unset: the machine's", "", System},
		{"set by the operator", "/etc/cccp/registries.conf", "/etc/cccp/registries.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Base(func(k string) string {
				if k == "CONTAINERS_REGISTRIES_CONF" {
					return tc.env
				}
				return ""
			})
			if got != tc.want {
				t.Errorf("Base = %q, want %q", got, tc.want)
			}
		})
	}
}
