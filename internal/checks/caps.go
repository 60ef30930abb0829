package checks

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/shlex"
)

// capabilityLabels are the atomic-style labels that hold a command line
// for running or installing the image.
var capabilityLabels = []string{"RUN", "INSTALL", "UNINSTALL", "run", "install", "uninstall"}

// Capabilities reports what the image's RUN/INSTALL labels ask of the host
// (atomic style: `podman run --privileged --net=host -v /:/host ...`):
// privileged mode, host namespaces, added capabilities, devices, relaxed
// security options and host mounts. Findings are for people to review; the
// check passes.
func Capabilities(labels map[string]string, log io.Writer) Result {
	const name = "capabilities"
	res := Result{Name: name, Passed: true}
	seen := 0
	for _, key := range capabilityLabels {
		cmd, ok := labels[key]
		if !ok {
			continue
		}
		seen++
		fmt.Fprintf(log, "label %s: %s\n", key, cmd)
		for _, f := range labelCapabilities(cmd) {
			res.Findings = append(res.Findings, key+": "+f)
		}
	}
	switch {
	case seen == 0:
		res.Summary = "no RUN or INSTALL label"
	case len(res.Findings) == 0:
		res.Summary = "the labels ask for no extra privileges"
	default:
		res.Summary = fmt.Sprintf("the labels ask for %d privileges", len(res.Findings))
	}
	for _, f := range res.Findings {
		fmt.Fprintln(log, f)
	}
	return res
}

// labelCapabilities parses one command line and names each privilege it asks for.
func labelCapabilities(cmd string) []string {
	words, err := shlex.Split(cmd)
	if err != nil {
		words = strings.Fields(cmd)
	}
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		flag, val, hasVal := strings.Cut(w, "=")
		next := func() string {
			if hasVal {
				return val
			}
			if i+1 < len(words) {
				i++
				return words[i]
			}
			return ""
		}
		switch flag {
		case "--privileged":
			if !hasVal || val == "true" {
				out = append(out, "privileged")
			}
		case "--net", "--network":
			if v := next(); v == "host" {
				out = append(out, "host network")
			}
		case "--pid", "--ipc", "--uts", "--userns", "--cgroupns":
			if v := next(); v == "host" {
				out = append(out, "host "+strings.TrimPrefix(flag, "--")+" namespace")
			}
		case "--cap-add":
			out = append(out, "cap-add "+next())
		case "--device":
			out = append(out, "device "+next())
		case "--security-opt":
			if v := next(); v == "label=disable" || v == "label:disable" || strings.Contains(v, "unconfined") {
				out = append(out, "security-opt "+v)
			}
		case "-v", "--volume", "--mount":
			v := next()
			if flag == "--mount" {
				if src := mountSource(v); strings.HasPrefix(src, "/") {
					out = append(out, "host mount "+v)
				}
			} else if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, "/") {
				out = append(out, "host mount "+v)
			}
		}
	}
	sort.Strings(out)
	return out
}

func mountSource(spec string) string {
	for _, kv := range strings.Split(spec, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "source" || k == "src" {
			return v
		}
	}
	return ""
}
