// Package archtest keeps the import graph pointing one way with an
// allow-list: every package of the module has a row saying which of cccp's
// packages it may import, so a new package, or a new import across layers,
// fails here until someone decides where it belongs.
//
// The layers, outside in: cmd wires everything; bot turns forge events into
// pipeline work, with one adapter per forge that never sees the bot core;
// the pipeline knows its stage backends only through internal/backend's
// interfaces; backends (internal/backend/local) use the tools
// (buildah, podman, checks, git); the store and the vocabulary
// (internal/types) depend on nothing. Test helpers (testgit, testimage,
// *test packages) are never imported by production code.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/cccp-project/cccp"

// allowed is the table: package -> the cccp packages it may import. An
// entry ending in "/..." allows a whole subtree.
var allowed = map[string][]string{
	// wiring
	"cmd/cccp": {"bot", "bot/...", "internal/..."},
	"hack/ingestserver": {"bot", "bot/event", "bot/github", "internal/index", "internal/pipeline",
		"internal/store", "internal/types"},

	// the bot core and its forge adapters
	"bot": {"bot/commands", "bot/dispatch", "bot/event", "bot/intake", "bot/report", "bot/route",
		"bot/internal/...", "internal/explain", "internal/gitsrc", "internal/index",
		"internal/pipeline", "internal/redact", "internal/store", "internal/textcut", "internal/types"},
	"bot/commands": {"internal/types"},
	// the bot's parts: intake (verify, store, deduplicate), dispatch
	// (durable, next-attempt times); neither knows routing or the other
	"bot/intake":   {"bot/event", "internal/store"},
	"bot/dispatch": {"bot/event", "bot/internal/retry", "internal/store"},
	// reporting: the outbox and the pieces comments are assembled from
	"bot/report": {"bot/event", "bot/internal/retry", "internal/redact", "internal/runlog", "internal/store", "internal/textcut"},
	// checks of rendered reports, for tests
	"bot/report/reporttest": nil,
	// pure routing decisions: an event and the entries in, requests out
	"bot/route":             {"bot/event", "internal/index", "internal/pipeline", "internal/store", "internal/types"},
	"bot/event":             {"internal/types"},
	"bot/github":            {"bot/event", "bot/internal/...", "internal/textcut"},
	"bot/gitlab":            {"bot/event", "bot/internal/...", "internal/textcut"},
	"bot/gitea":             {"bot/event", "bot/internal/...", "internal/textcut"},
	"bot/internal/hmacsig":  nil,
	"bot/internal/jsonpick": nil,
	"bot/internal/retry":    {"bot/event"},
	"bot/internal/whoami":   nil,
	// forge doubles for tests
	"bot/forgetest":         {"bot/event"},
	"bot/github/githubtest": {"bot/forgetest"},
	"bot/gitlab/gitlabtest": {"bot/forgetest"},
	"bot/gitea/giteatest":   {"bot/forgetest"},
	"internal/archtest":     nil,
	// renders charts/cccp with helm and decodes deploy/ strictly
	"deploy/deploytest": nil,
	// cccp builds its own image through its own pipeline (a test)
	"deploy/imagetest":             nil,
	"internal/testgit":             nil,
	"internal/testimage":           nil,
	"internal/testproc":            nil,
	"internal/backend/backendtest": {"internal/backend", "internal/index", "internal/types"},

	// runs and stages
	"internal/pipeline": {"internal/backend", "internal/buildkey", "internal/cascade", "internal/digestcache", "internal/index", "internal/keylock", "internal/queue", "internal/redact", "internal/store", "internal/types"},
	// the pure scheduling policy: which queued run works next
	"internal/queue": {"internal/types"},
	// rescan schedules rescan runs through the pipeline and keeps their
	// findings in the store.
	"internal/rescan":  {"internal/index", "internal/pipeline", "internal/store", "internal/types"},
	"internal/backend": {"internal/index", "internal/types"},
	// the OpenShift build backend: the seam and the index, never the local tools
	"internal/backend/openshift": {"internal/backend", "internal/index", "internal/types"},
	"internal/backend/local": {"internal/backend", "internal/buildah", "internal/checks", "internal/gitsrc",
		"internal/idpool", "internal/index", "internal/podman", "internal/redact", "internal/safefs", "internal/sandbox", "internal/types"},
	// a remote backend speaks only HTTP and cccp's own formats: no local tools
	"internal/backend/jenkins":             {"internal/backend", "internal/backend/testreport", "internal/redact", "internal/textcut"},
	"internal/backend/jenkins/jenkinstest": nil,
	"internal/backend/testreport":          {"internal/backend", "internal/types"},

	// tools the local backend drives
	"internal/buildah": {"internal/idpool", "internal/redact", "internal/regconf", "internal/registry", "internal/safefs", "internal/sandbox", "internal/tailbuf"},
	"internal/podman":  {"internal/redact", "internal/registry", "internal/sandbox"},
	"internal/checks":  {"internal/dockerlint", "internal/podman", "internal/redact", "internal/safefs", "internal/sandbox", "internal/types"},
	// the box repository code runs in, and bounded reads of what it wrote
	"internal/sandbox": {"internal/idpool", "internal/podman", "internal/redact", "internal/regconf", "internal/tailbuf"},
	// members of a pool (sandbox users, build id ranges) held by one
	// process at a time, machine-wide (flock)
	"internal/idpool":     nil,
	"internal/safefs":     nil,
	"internal/tailbuf":    nil,
	"internal/regconf":    nil,
	"internal/dockerlint": nil,
	"internal/gitsrc":     {"internal/redact", "internal/types"},
	"internal/registry":   {"internal/redact"},

	// the evidence of delivered images: SBOM, signature, provenance
	"internal/evidence":   {"internal/keylock", "internal/provenance", "internal/sbom", "internal/signing", "internal/types"},
	"internal/sbom":       nil,
	"internal/signing":    {"internal/keylock"},
	"internal/provenance": nil,
	// a lock per key (per artifact tag) inside one process
	"internal/keylock": nil,

	// state, pages and vocabulary
	"internal/store":  {"internal/types"},
	"internal/runlog": nil,
	// email about finished runs through the store's outbox
	"internal/notify":    {"internal/explain", "internal/redact", "internal/runlog", "internal/store", "internal/textcut", "internal/types"},
	"internal/web":       {"internal/explain", "internal/index", "internal/onboard", "internal/redact", "internal/runlog", "internal/store", "internal/types"},
	"internal/index":     {"internal/redact", "internal/safefs"},
	"internal/retention": {"internal/store", "internal/types"},
	// a real SMTP server for tests
	"internal/notify/notifytest": nil,
	// retention of runs, logs and run tags; the data folder's size
	// the one live index (entries and graph, swapped atomically) and the
	// lines of a log that explain a failure
	"internal/liveindex": {"internal/index"},
	"internal/explain":   {"internal/store", "internal/types"},
	// which descendants a parent's new image rebuilds, in what order (pure)
	"internal/cascade":   nil,
	"internal/onboard":   {"internal/index"},
	"internal/redact":    nil,
	"internal/types":     nil,
	"internal/buildkey":  nil,
	"internal/poll":      {"internal/redact", "internal/store", "internal/types"},
	"internal/basewatch": {"internal/store", "internal/types"},
	// recent digests of base image tags, one HEAD in flight per image
	"internal/digestcache": nil,
	// the one UTF-8 cutter
	"internal/textcut": nil,
}

type pkg struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	// The result depends on files go test cannot see: run with -count=1
	// (make test does) after adding a package.
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

// mayImport tells whether from's row allows importing to.
func mayImport(rules []string, to string) bool {
	return slices.ContainsFunc(rules, func(r string) bool {
		if sub, ok := strings.CutSuffix(r, "/..."); ok {
			return to == sub || strings.HasPrefix(to, sub+"/")
		}
		return r == to
	})
}

func TestImportsAreAllowed(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; the module layout changed?", len(pkgs))
	}
	for _, p := range pkgs {
		from, _ := rel(p.ImportPath)
		rules, known := allowed[from]
		if !known {
			t.Errorf("%s is a new package: add a row for it to the allow-list in internal/archtest/arch_test.go, "+
				"with the cccp packages it may import", from)
			continue
		}
		for _, imp := range p.Imports {
			to, ours := rel(imp)
			if !ours {
				continue
			}
			if !mayImport(rules, to) {
				t.Errorf("%s imports %s, which its row in internal/archtest does not allow", from, to)
			}
			if testHelper(to) && !testHelper(from) {
				t.Errorf("%s imports the test helper %s", from, to)
			}
		}
	}
}

// testHelper tells the packages only tests may import.
func testHelper(p string) bool {
	return p == "internal/testimage" || p == "internal/testgit" || p == "internal/testproc" || strings.HasSuffix(p, "test")
}

// TestAllowListHasNoTestHelpers: production code never imports a test
// helper, whatever a row says.
func TestAllowListHasNoTestHelpers(t *testing.T) {
	helper := testHelper
	var bad []string
	for from, rules := range allowed {
		if helper(from) {
			continue
		}
		for _, r := range rules {
			if helper(strings.TrimSuffix(r, "/...")) {
				bad = append(bad, from+" -> "+r)
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("rows allow production code to import test helpers: %s", strings.Join(bad, ", "))
	}
}

func TestMayImport(t *testing.T) {
	for _, tc := range []struct {
		rules []string
		to    string
		want  bool
	}{
		{[]string{"internal/..."}, "internal/store", true},
		{[]string{"internal/..."}, "internal", true},
		{[]string{"internal/..."}, "internalx/store", false},
		{[]string{"bot/internal/..."}, "bot/internal/retry", true},
		{[]string{"internal/store"}, "internal/store/sub", false},
		{nil, "internal/types", false},
	} {
		if got := mayImport(tc.rules, tc.to); got != tc.want {
			t.Errorf("mayImport(%q, %q) = %v, want %v", tc.rules, tc.to, got, tc.want)
		}
	}
}
