package checks

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/types"
)

// A scan is one of the predefined checks that run a script inside the image.
type scan struct {
	name   types.CheckName
	script string
	parse  func(out string) Result
}

// scans are the predefined probes, in the order they run and are shown.
var scans = []scan{
	{types.CheckPackageUpdates, packageUpdatesScript, parsePackageUpdates},
	{types.CheckRPMVerify, rpmVerifyScript, parseRPMVerify},
	{types.CheckLangPackages, langPackagesScript, parseLangPackages},
}

// scanResult is one scan's outcome from probes; err is set when the scan
// could not run at all.
type scanResult struct {
	Result
	err error
}

// probeHold is what the probe container runs: a shell that waits on its
// open stdin, which needs nothing from the image but /bin/sh (a one-shot
// entrypoint, or no sleep, would not keep it up).
var probeHold = []string{"/bin/sh", "-c", "read _"}

// probes runs every scan in one container started from image: the image
// is started once, with /bin/sh waiting, and each scan's script runs in it
// with its own `podman exec`, all at the same time. logs[i] receives scan
// i's output (without marker lines); the results come back in the order of
// scans (a subset of the package's scans, in their order).
//
// Each scan's output arrives on its own exec's pipes, so which scan it
// belongs to does not depend on anything printed inside the container.
// Boundary lines in one shared output stream could be forged, even with a
// random per-run token: the scans run the image's own tools (rpm, dnf,
// pip...) as the same user as the shell that prints the boundaries, and
// they can read its command line, environment and memory
// (/proc/PID/cmdline, environ, mem), so the token too. Marker lines are
// still used within one scan (to split dnf's output from its exit code),
// as before: a tool can only misreport its own scan, which it can anyway.
//
// An image without /bin/sh skips every scan; a container that cannot be
// started fails every scan with the reason.
func (s *Suite) probes(ctx context.Context, image string, scans []scan, logs []io.Writer) []scanResult {
	res := make([]scanResult, len(scans))
	name := s.containerName("probe")
	defer s.remove(name)
	start := &capped{max: 64 << 10}
	code, err := s.Containers.Run(ctx, podman.RunOptions{
		Image:       image,
		Name:        name,
		Entrypoint:  probeHold[:1],
		Cmd:         probeHold[1:],
		Network:     s.Network,
		Detach:      true,
		Interactive: true,
		Log:         start,
	})
	if err == nil && (code == 126 || code == 127) {
		for i, sc := range scans { // no /bin/sh to start
			io.WriteString(logs[i], start.String())
			res[i] = scanResult{Result: noShell(string(sc.name), logs[i])}
		}
		return res
	}
	if err == nil && code != 0 {
		err = fmt.Errorf("podman run exited %d: %s", code, start.String())
	}
	// No inspect here: an exec into a container that is not running fails
	// with podman's reason, and one podman call less is worth it while the
	// smoke run and the user's script share the machine.
	if err != nil {
		for i, sc := range scans {
			res[i] = scanResult{Result: Result{Name: string(sc.name), Summary: "could not run: " + err.Error()},
				err: fmt.Errorf("%s on %s: %w", sc.name, image, err)}
			fmt.Fprintln(logs[i], res[i].Summary)
		}
		return res
	}
	// The scans run at the same time, each in its own exec.
	var wg sync.WaitGroup
	for i, sc := range scans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := &capped{max: probeOutputMax}
			_, err := s.Containers.Exec(ctx, name, []string{"/bin/sh", "-c", sc.script}, out)
			logProbe(out.String(), logs[i])
			if err != nil {
				res[i] = scanResult{Result: Result{Name: string(sc.name), Summary: "could not run: " + err.Error()},
					err: fmt.Errorf("%s on %s: %w", sc.name, image, err)}
				fmt.Fprintln(logs[i], res[i].Summary)
				return
			}
			res[i] = scanResult{Result: sc.parse(out.String())}
		}()
	}
	wg.Wait()
	return res
}
