// Package archtest keeps the import graph pointing one way:
// cmd → bot → internal/..., forge adapters beside the bot core, and the
// pipeline blind to its concrete backends. It fails when a package reaches
// in the wrong direction.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/cccp-project/cccp"

type pkg struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// rel turns an import path of this module into its folder ("bot/github").
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func TestImportDirection(t *testing.T) {
	rules := []struct {
		name   string
		from   func(string) bool
		mayNot func(string) bool
	}{
		{"internal packages never import bot or cmd",
			func(p string) bool { return under(p, "internal") },
			func(i string) bool { return under(i, "bot") || under(i, "cmd") || under(i, "hack") }},
		{"bot never imports cmd",
			func(p string) bool { return under(p, "bot") },
			func(i string) bool { return under(i, "cmd") || under(i, "hack") }},
		{"forge adapters do not import the bot core",
			func(p string) bool {
				return under(p, "bot/github") || under(p, "bot/gitlab") || under(p, "bot/gitea") || under(p, "bot/event")
			},
			func(i string) bool { return i == "bot" }},
		{"the pipeline knows its backends only by interface",
			func(p string) bool { return p == "internal/pipeline" },
			func(i string) bool {
				for _, b := range []string{"internal/local", "internal/buildah", "internal/podman", "internal/checks", "internal/registry", "internal/gitsrc", "internal/web", "internal/runlog"} {
					if i == b {
						return true
					}
				}
				return false
			}},
		{"the OpenShift backend knows only the seam and the index, not the local tools or the pipeline",
			func(p string) bool { return under(p, "internal/backend/openshift") },
			func(i string) bool {
				for _, b := range []string{"internal/pipeline", "internal/local", "internal/buildah", "internal/podman", "internal/checks", "internal/registry", "internal/store", "internal/web", "internal/runlog"} {
					if under(i, b) {
						return true
					}
				}
				return false
			}},
		{"the store depends on nothing of cccp",
			func(p string) bool { return p == "internal/store" },
			func(i string) bool { return i != "" }},
		{"test helpers are not imported by production code",
			func(p string) bool { return !strings.HasSuffix(p, "test") },
			func(i string) bool {
				return i == "internal/testimage" || i == "internal/testgit" || i == "bot/forgetest" || strings.HasSuffix(i, "/githubtest") ||
					strings.HasSuffix(i, "/gitlabtest") || strings.HasSuffix(i, "/giteatest")
			}},
	}
	pkgs := listPackages(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; the module layout changed?", len(pkgs))
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			checked := 0
			for _, p := range pkgs {
				from, _ := rel(p.ImportPath)
				if !r.from(from) {
					continue
				}
				checked++
				for _, imp := range p.Imports {
					to, ours := rel(imp)
					if ours && r.mayNot(to) {
						t.Errorf("%s imports %s", from, to)
					}
				}
			}
			if checked == 0 {
				t.Errorf("no package matched the rule; the layout changed?")
			}
		})
	}
}
