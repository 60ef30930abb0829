// Package checks holds cccp's predefined image tests: Dockerfile lint,
// scans run inside the built image (package updates, rpm verification,
// outdated language packages), the capabilities a RUN/INSTALL label asks
// for, a smoke run, and the user's own test script.
//
// Each check returns a Result and writes its detail to a log. The error
// return is kept for a check that could not run at all (podman failed, the
// context ended); a check that ran and found a problem is a Result with
// Passed false and a nil error. Whether a failed check blocks delivery is
// the caller's decision.
package checks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cccp-project/cccp/internal/podman"
)

// Result is one check's outcome.
type Result struct {
	Name     string
	Passed   bool
	Skipped  bool // the check does not apply to this image (no rpm, no package manager)
	Summary  string
	Findings []string
}

// Containers is what the checks need from a container tool; *podman.Runner
// implements it.
type Containers interface {
	Run(ctx context.Context, opts podman.RunOptions) (int, error)
	Exec(ctx context.Context, name string, cmd []string, log io.Writer) (int, error)
	ImageLabels(ctx context.Context, image string) (map[string]string, error)
	Inspect(ctx context.Context, name string) (podman.State, error)
	Logs(ctx context.Context, name string, tail int) (string, error)
	Rm(ctx context.Context, name string) error
}

// Suite runs the checks that need containers.
type Suite struct {
	Containers Containers
	// Scripts runs the user's test script (a sandbox box whose podman is
	// Containers); without it UserScript refuses to run the script.
	Scripts ScriptRunner
	// Network for the scans that may reach package indexes; "" is the
	// container tool's default. Smoke runs always use "none".
	Network string
	// TestNetwork is the network of the container the user's script tests;
	// default "none" (a cccp.yaml with test-network: true asks for
	// "slirp4netns").
	TestNetwork string
	// Poll is how often a waiting check looks at a container; default 250ms.
	Poll time.Duration
	// Settle is how long UserScript waits before it decides that the
	// image's entrypoint exited at once; default 1s.
	Settle time.Duration
	// NamePrefix starts the names of the containers the checks create;
	// default "cccp-check".
	NamePrefix string
	Logger     *slog.Logger
}

func (s *Suite) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Suite) poll() time.Duration {
	if s.Poll > 0 {
		return s.Poll
	}
	return 250 * time.Millisecond
}

func (s *Suite) settle() time.Duration {
	if s.Settle > 0 {
		return s.Settle
	}
	return time.Second
}

func (s *Suite) containerName(check string) string {
	prefix := s.NamePrefix
	if prefix == "" {
		prefix = "cccp-check"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%s-%s", prefix, check, hex.EncodeToString(b))
}

// probe runs script with /bin/sh inside image (entrypoint replaced) and
// returns everything it printed. A missing /bin/sh is ok=false.
// The log gets the output without its marker lines (see logProbe).
func (s *Suite) probe(ctx context.Context, image, script string, log io.Writer) (out string, ok bool, err error) {
	buf := &capped{max: probeOutputMax}
	code, err := s.Containers.Run(ctx, podman.RunOptions{
		Image:      image,
		Name:       s.containerName("probe"),
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{script},
		Network:    s.Network,
		Remove:     true,
		Log:        buf,
	})
	if err != nil {
		return "", false, err
	}
	if code == 126 || code == 127 {
		if !strings.Contains(buf.String(), markerPrefix) {
			io.WriteString(log, buf.String())
			return buf.String(), false, nil // no /bin/sh in the image
		}
	}
	logProbe(buf.String(), log)
	return buf.String(), true, nil
}

const markerPrefix = "@@cccp "

// logProbe writes a probe's output to log without the marker lines that
// delimit its tools: those are cccp's bookkeeping, not output. A tool that
// exited non-zero is said so in words.
func logProbe(out string, log io.Writer) {
	var b strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		name, ok := strings.CutPrefix(strings.TrimRight(l, "\r\n"), markerPrefix)
		if !ok {
			b.WriteString(l)
			continue
		}
		if rest, ok := strings.CutPrefix(name, "exit-"); ok {
			if tool, code, ok := strings.Cut(rest, " "); ok && code != "0" {
				fmt.Fprintf(&b, "(%s exited %s)\n", tool, code)
			}
		}
	}
	io.WriteString(log, b.String())
}

// probeOutputMax bounds what is kept of one probe's output for parsing:
// the image's own tools print it, and a hostile image prints without end.
const probeOutputMax = 4 << 20

// capped keeps the first max bytes written to it and counts the rest.
type capped struct {
	mu      sync.Mutex
	b       []byte
	max     int
	dropped int64
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - len(c.b)
	switch {
	case room >= len(p):
		c.b = append(c.b, p...)
	case room > 0:
		c.b = append(c.b, p[:room]...)
		c.dropped += int64(len(p) - room)
	default:
		c.dropped += int64(len(p))
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.b)
}

// sections splits probe output at "@@cccp NAME" marker lines.
func sections(out string) map[string][]string {
	res := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, "\r")
		if name, ok := strings.CutPrefix(l, markerPrefix); ok {
			cur = strings.TrimSpace(name)
			if _, seen := res[cur]; !seen {
				res[cur] = nil
			}
			continue
		}
		if cur != "" && strings.TrimSpace(l) != "" {
			res[cur] = append(res[cur], l)
		}
	}
	return res
}

// exitOf returns the code in a section's "@@cccp exit-NAME N" sibling.
func exitOf(sec map[string][]string, name string) (int, bool) {
	for k := range sec {
		if rest, ok := strings.CutPrefix(k, "exit-"+name+" "); ok {
			var code int
			if _, err := fmt.Sscan(rest, &code); err == nil {
				return code, true
			}
		}
	}
	return 0, false
}

func noShell(name string, log io.Writer) Result {
	fmt.Fprintln(log, "the image has no /bin/sh; skipped")
	return Result{Name: name, Passed: true, Skipped: true, Summary: "no /bin/sh in the image; skipped"}
}

func lastLines(s string, n int) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines
}
