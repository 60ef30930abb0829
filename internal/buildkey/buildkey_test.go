package buildkey

import (
	"errors"
	"maps"
	"slices"
	"testing"
)

func base() Inputs {
	return Inputs{
		GitURL:      "https://git.example/org/app.git",
		Commit:      "0123456789abcdef0123456789abcdef01234567",
		ContextTree: "1111111111111111111111111111111111111111",
		Dockerfile:  "2222222222222222222222222222222222222222",
		Entry:       map[string]string{"git-path": "/", "target-file": "Dockerfile", "tags": "latest"},
		BuildArgs:   map[string]string{"A": "1", "B": "2"},
		Bases:       []Base{{Image: "centos:7", Digest: "sha256:aa"}, {Image: "demo/base:latest", Digest: "sha256:bb"}},
		Stage:       map[string]string{"builder": "local", "blocking": "smoke,user-script"},
	}
}

func TestSumChangesWithEveryInput(t *testing.T) {
	want := mustSum(t, base())
	for _, tc := range []struct {
		name   string
		change func(*Inputs)
	}{
		{"git url", func(in *Inputs) { in.GitURL = "https://git.example/fork/app.git" }},
		{"commit", func(in *Inputs) { in.Commit = "fedcba9876543210fedcba9876543210fedcba98" }},
		{"context tree", func(in *Inputs) { in.ContextTree = "3333333333333333333333333333333333333333" }},
		{"dockerfile", func(in *Inputs) { in.Dockerfile = "4444444444444444444444444444444444444444" }},
		{"entry field", func(in *Inputs) { in.Entry["target-file"] = "Dockerfile.prod" }},
		{"entry field added", func(in *Inputs) { in.Entry["prebuild-script"] = "make" }},
		{"build arg value", func(in *Inputs) { in.BuildArgs["A"] = "2" }},
		{"build arg moved", func(in *Inputs) { in.BuildArgs = map[string]string{"A": "12"} }},
		{"base digest", func(in *Inputs) { in.Bases[0].Digest = "sha256:cc" }},
		{"base image", func(in *Inputs) { in.Bases[1].Image = "demo/base:2" }},
		{"base added", func(in *Inputs) { in.Bases = append(in.Bases, Base{Image: "x", Digest: "sha256:dd"}) }},
		{"bases reordered", func(in *Inputs) { slices.Reverse(in.Bases) }},
		{"stage config", func(in *Inputs) { in.Stage["blocking"] = "smoke" }},
		{"builder", func(in *Inputs) { in.Stage["builder"] = "openshift" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := clone(base())
			tc.change(&in)
			if got := mustSum(t, in); got == want {
				t.Errorf("key unchanged after changing the %s: %s", tc.name, got)
			}
		})
	}
}

func TestSumIsStable(t *testing.T) {
	a, b := base(), base()
	// The same maps built in another order.
	b.Entry = map[string]string{"tags": "latest", "target-file": "Dockerfile", "git-path": "/"}
	b.BuildArgs = map[string]string{"B": "2", "A": "1"}
	if x, y := mustSum(t, a), mustSum(t, b); x != y {
		t.Errorf("equal inputs, different keys: %s %s", x, y)
	}
	if got := mustSum(t, a); len(got) != len("sha256:")+64 {
		t.Errorf("key %q is not a sha256 digest", got)
	}
}

func TestSumRefusesUnknownInputs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Inputs)
	}{
		{"no commit", func(in *Inputs) { in.Commit = "" }},
		{"base without digest", func(in *Inputs) { in.Bases[1].Digest = "" }},
		{"base without image", func(in *Inputs) { in.Bases[0].Image = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := clone(base())
			tc.change(&in)
			if k, err := Sum(in); !errors.Is(err, ErrIncomplete) {
				t.Errorf("Sum = %q, %v; want ErrIncomplete", k, err)
			}
		})
	}
}

func clone(in Inputs) Inputs {
	in.Entry, in.BuildArgs, in.Stage = maps.Clone(in.Entry), maps.Clone(in.BuildArgs), maps.Clone(in.Stage)
	in.Bases = slices.Clone(in.Bases)
	return in
}

func mustSum(t *testing.T, in Inputs) string {
	t.Helper()
	k, err := Sum(in)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
