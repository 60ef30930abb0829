package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// The scans run one /bin/sh script in a throw-away container from the
// image. The script marks each tool's output with "@@cccp NAME" and its
// exit code with "@@cccp exit-NAME CODE".
const shRun = `run() { n=$1; shift; echo "@@cccp $n"; "$@" 2>&1; echo "@@cccp exit-$n $?"; }
has() { command -v "$1" >/dev/null 2>&1; }
`

const packageUpdatesScript = shRun + `if has dnf; then run dnf dnf -q check-update
elif has yum; then run yum yum -q check-update
elif has apt; then run apt apt list --upgradable
elif has apk; then run apk apk version -l '<'
else echo "@@cccp none"; fi
`

// PackageUpdates reports OS packages with updates available, with
// whichever of dnf, yum, apt or apk the image has. It fails when updates
// are available; not reaching a repository is a finding, not a failure.
// apt reports from the image's own package lists (no `apt update`).
func (s *Suite) PackageUpdates(ctx context.Context, image string, log io.Writer) (Result, error) {
	const name = "package-updates"
	out, ok, err := s.probe(ctx, image, packageUpdatesScript, log)
	if err != nil {
		return Result{Name: name, Summary: "could not run: " + err.Error()}, fmt.Errorf("%s on %s: %w", name, image, err)
	}
	if !ok {
		return noShell(name, log), nil
	}
	return parsePackageUpdates(out), nil
}

func parsePackageUpdates(out string) Result {
	const name = "package-updates"
	sec := sections(out)
	for _, pm := range []string{"dnf", "yum", "apt", "apk"} {
		lines, present := sec[pm]
		if !present {
			continue
		}
		code, _ := exitOf(sec, pm)
		var updates []string
		switch pm {
		case "dnf", "yum":
			// exit 100: updates listed; 0: none; anything else: an error.
			if code != 100 && code != 0 {
				return unreachable(name, pm, lines)
			}
			for _, l := range lines {
				if strings.HasPrefix(l, "Obsoleting") {
					break
				}
				if f := strings.Fields(l); len(f) == 3 && strings.Contains(f[0], ".") {
					updates = append(updates, strings.Join(f, " "))
				}
			}
		case "apt":
			for _, l := range lines {
				if strings.Contains(l, "[upgradable from:") {
					updates = append(updates, strings.TrimSpace(l))
				}
			}
			if code != 0 && len(updates) == 0 {
				return unreachable(name, pm, lines)
			}
		case "apk":
			for _, l := range lines {
				if strings.Contains(l, " < ") && !strings.HasPrefix(l, "WARNING") {
					updates = append(updates, strings.Join(strings.Fields(l), " "))
				}
			}
			if code != 0 && len(updates) == 0 {
				return unreachable(name, pm, lines)
			}
		}
		if len(updates) == 0 {
			return Result{Name: name, Passed: true, Summary: pm + ": no updates available"}
		}
		return Result{Name: name, Summary: fmt.Sprintf("%s: %d package updates available", pm, len(updates)), Findings: updates}
	}
	return Result{Name: name, Passed: true, Skipped: true, Summary: "no package manager (dnf, yum, apt, apk) in the image"}
}

func unreachable(name, tool string, lines []string) Result {
	why := "no output"
	if len(lines) > 0 {
		why = strings.TrimSpace(lines[len(lines)-1])
	}
	return Result{Name: name, Passed: true,
		Summary:  tool + ": could not check",
		Findings: []string{fmt.Sprintf("%s: could not check: %s", tool, why)}}
}

// busybox has an rpm applet that cannot verify; `rpm --version` tells it
// from the real rpm.
const rpmVerifyScript = shRun + `if has rpm && rpm --version >/dev/null 2>&1; then run rpm rpm -Va; else echo "@@cccp none"; fi
`

// rpmLine is one line of `rpm -Va`: nine attribute flags (or "missing"),
// an optional file type (c config, d doc, g ghost, l license, r readme),
// then the path.
var rpmLine = regexp.MustCompile(`^(missing|[.SM5DLUGTP?]{9})\s+(?:([cdglr])\s+)?(/.*)$`)

// RPMVerify runs `rpm -Va` in RPM images and lists the files that differ
// from their packages. Changed configuration files are reported; any other
// changed or missing file fails the check. Images without rpm are skipped.
func (s *Suite) RPMVerify(ctx context.Context, image string, log io.Writer) (Result, error) {
	const name = "rpm-verify"
	out, ok, err := s.probe(ctx, image, rpmVerifyScript, log)
	if err != nil {
		return Result{Name: name, Summary: "could not run: " + err.Error()}, fmt.Errorf("%s on %s: %w", name, image, err)
	}
	if !ok {
		return noShell(name, log), nil
	}
	return parseRPMVerify(out), nil
}

func parseRPMVerify(out string) Result {
	const name = "rpm-verify"
	sec := sections(out)
	lines, present := sec["rpm"]
	if !present {
		return Result{Name: name, Passed: true, Skipped: true, Summary: "not an RPM image (no rpm); skipped"}
	}
	var findings []string
	config, other := 0, 0
	for _, l := range lines {
		m := rpmLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		findings = append(findings, strings.Join(strings.Fields(l), " "))
		if m[2] == "c" {
			config++
		} else {
			other++
		}
	}
	if len(findings) == 0 {
		if code, _ := exitOf(sec, "rpm"); code != 0 {
			return unreachable(name, "rpm -Va", lines)
		}
		return Result{Name: name, Passed: true, Summary: "all files match their packages"}
	}
	return Result{Name: name, Passed: other == 0, Findings: findings,
		Summary: fmt.Sprintf("%d files differ from their packages (%d configuration files)", len(findings), config)}
}

const langPackagesScript = shRun + `if has pip3; then run pip pip3 list --outdated --format=json --disable-pip-version-check
elif has pip; then run pip pip list --outdated --format=json --disable-pip-version-check; fi
if has npm; then run npm npm outdated -g --json; fi
if has gem; then run gem gem outdated; fi
echo "@@cccp end"
`

// networkTrouble are the messages pip, npm and gem print when they cannot
// reach their index.
var networkTrouble = []string{
	"Failed to establish", "Network is unreachable", "Temporary failure in name resolution",
	"Name or service not known", "ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH",
	"getaddrinfo", "Could not fetch", "Unable to download", "SocketError", "Connection refused",
}

// LangPackages lists outdated pip, npm (global) and gem packages, for the
// tools the image has. Outdated packages fail the check; an index that
// cannot be reached is a finding only.
func (s *Suite) LangPackages(ctx context.Context, image string, log io.Writer) (Result, error) {
	const name = "lang-packages"
	out, ok, err := s.probe(ctx, image, langPackagesScript, log)
	if err != nil {
		return Result{Name: name, Summary: "could not run: " + err.Error()}, fmt.Errorf("%s on %s: %w", name, image, err)
	}
	if !ok {
		return noShell(name, log), nil
	}
	return parseLangPackages(out), nil
}

func parseLangPackages(out string) Result {
	const name = "lang-packages"
	sec := sections(out)
	res := Result{Name: name, Passed: true}
	var tools, summary []string
	outdated := 0
	for _, tool := range []string{"pip", "npm", "gem"} {
		lines, present := sec[tool]
		if !present {
			continue
		}
		tools = append(tools, tool)
		if l, bad := troubled(lines); bad {
			res.Findings = append(res.Findings, fmt.Sprintf("%s: could not reach the package index: %s", tool, strings.TrimSpace(l)))
			summary = append(summary, tool+": index unreachable")
			continue
		}
		var found []string
		switch tool {
		case "pip":
			for _, l := range lines {
				if !strings.HasPrefix(strings.TrimSpace(l), "[") {
					continue
				}
				var pkgs []struct {
					Name, Version string
					Latest        string `json:"latest_version"`
				}
				if json.Unmarshal([]byte(l), &pkgs) == nil {
					for _, p := range pkgs {
						found = append(found, fmt.Sprintf("pip: %s %s -> %s", p.Name, p.Version, p.Latest))
					}
				}
			}
		case "npm":
			joined := strings.Join(lines, "\n")
			if i, j := strings.Index(joined, "{"), strings.LastIndex(joined, "}"); i >= 0 && j > i {
				var pkgs map[string]struct{ Current, Latest string }
				if json.Unmarshal([]byte(joined[i:j+1]), &pkgs) == nil {
					keys := make([]string, 0, len(pkgs))
					for k := range pkgs {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						found = append(found, fmt.Sprintf("npm: %s %s -> %s", k, pkgs[k].Current, pkgs[k].Latest))
					}
				}
			}
		case "gem":
			for _, l := range lines {
				if strings.Contains(l, " (") && strings.Contains(l, " < ") {
					found = append(found, "gem: "+strings.TrimSpace(l))
				}
			}
		}
		outdated += len(found)
		res.Findings = append(res.Findings, found...)
		summary = append(summary, fmt.Sprintf("%s: %d outdated", tool, len(found)))
	}
	if len(tools) == 0 {
		res.Skipped = true
		res.Summary = "no pip, npm or gem in the image"
		return res
	}
	res.Passed = outdated == 0
	res.Summary = strings.Join(summary, ", ")
	return res
}

func troubled(lines []string) (string, bool) {
	for _, l := range lines {
		for _, t := range networkTrouble {
			if strings.Contains(l, t) {
				return l, true
			}
		}
	}
	return "", false
}
