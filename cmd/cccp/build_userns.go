package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"

	"github.com/cccp-project/cccp/internal/idpool"
)

// openBuildIDs finds the id ranges that builds map root of their RUN
// steps to. RUN steps run as the host's root (which every build's log
// says) only when that is what the operator asked for (--build-user=)
// or when the default build user simply does not exist (a machine
// without hack/install-deps.sh). Anything else fails closed: a
// --build-user given explicitly that cannot be used, or a build user
// that exists but whose subordinate ids or lock folder are unusable.
//
// A cccp that does not run as root has none of this to do: its buildah
// runs rootless, so RUN steps run as its own user (mapped into a user
// namespace of buildah's), never as the host's root, and the lock folder
// and subordinate ids of the build user are not its to use.
func openBuildIDs(f *envFlags, log *slog.Logger) (*idpool.Ranges, error) {
	return openBuildIDsAs(f, log, os.Geteuid())
}

// openBuildIDsAs is openBuildIDs for a cccp running as euid.
func openBuildIDsAs(f *envFlags, log *slog.Logger, euid int) (*idpool.Ranges, error) {
	if euid != 0 {
		log.Info("cccp does not run as root: buildah runs rootless and RUN steps run as cccp's own user; no build id ranges are used",
			"uid", euid, "build_user", f.buildUser)
		return nil, nil
	}
	if f.buildUser == "" {
		log.Warn("the build user is empty (--build-user=, pipeline.build.user: \"\"): RUN steps of builds run as root on this host")
		return nil, nil
	}
	explicit := f.buildUserSet || f.buildUserFlag != nil && f.buildUserFlag.Changed
	if _, err := user.Lookup(f.buildUser); err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) && !explicit {
			log.Warn("no build user: RUN steps of builds run as root on this host (hack/install-deps.sh creates it)",
				"user", f.buildUser, "err", err)
			return nil, nil
		}
	}
	r, err := idpool.NewRanges(idpool.RangesConfig{User: f.buildUser, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("build user %q: %w: builds would run their RUN steps as root on this host; "+
			"fix it (hack/install-deps.sh sets it up), or set --build-user= (pipeline.build.user: \"\" for cccp serve) to run them as root knowingly", f.buildUser, err)
	}
	return r, nil
}

// buildUsernsMetric writes whether builds run their RUN steps in a user
// namespace (1) or as the host's root (0).
func buildUsernsMetric(on bool) func(io.Writer) error {
	return func(w io.Writer) error {
		v := 0
		if on {
			v = 1
		}
		_, err := fmt.Fprintf(w, "# HELP cccp_build_userns_enabled Whether builds run their RUN steps in a user namespace of their own (1) or as the host's root (0).\n"+
			"# TYPE cccp_build_userns_enabled gauge\ncccp_build_userns_enabled %d\n", v)
		return err
	}
}
