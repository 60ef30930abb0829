package testimage

import "testing"

func TestBuilderRefChangesWithItsInputs(t *testing.T) {
	base := builderRef([]byte("a v1.0.0 h1:x\n"), "go1.26.8", WarmBuild("./cmd/cccp"), []string{"./cmd/cccp"})
	if want := "localhost/cccp-test/golang:1.26.8-"; len(base) != len(want)+12 || base[:len(want)] != want {
		t.Fatalf("builderRef = %q, want %s<12 hex digits>", base, want)
	}
	tests := []struct {
		name   string
		sum    string
		gover  string
		script string
		pkgs   []string
	}{
		{name: "go.sum changed", sum: "a v1.0.1 h1:y\n", gover: "go1.26.8", script: WarmBuild("./cmd/cccp"), pkgs: []string{"./cmd/cccp"}},
		{name: "Go version changed", sum: "a v1.0.0 h1:x\n", gover: "go1.26.9", script: WarmBuild("./cmd/cccp"), pkgs: []string{"./cmd/cccp"}},
		{name: "warm compile changed", sum: "a v1.0.0 h1:x\n", gover: "go1.26.8", script: WarmBuild("./cmd/cccp") + " -race", pkgs: []string{"./cmd/cccp"}},
		{name: "packages changed", sum: "a v1.0.0 h1:x\n", gover: "go1.26.8", script: WarmBuild("./cmd/cccp"), pkgs: []string{"./cmd/other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := builderRef([]byte(tt.sum), tt.gover, tt.script, tt.pkgs); got == base {
				t.Errorf("builderRef = %q, the same as before the change: a stale base would be reused", got)
			}
		})
	}
}
