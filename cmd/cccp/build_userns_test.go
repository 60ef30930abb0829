package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// TestOpenBuildIDsFailsClosed: builds fall back to running RUN steps as
// the host's root only when asked to (--build-user=) or when the default
// build user does not exist; a build user given explicitly, or one that
// exists with no usable subordinate ids, stops cccp with a reason and the
// way to allow root builds.
func TestOpenBuildIDsFailsClosed(t *testing.T) {
	tests := []struct {
		name     string
		flag     *string // set through the flag (Changed)
		value    string  // else as if by default
		euid     int     // cccp's; root (0) unless set
		enabled  bool
		errWants []string
		logWants string // default: the fallback to root builds
	}{
		{name: "default user missing falls back", value: "cccp-no-such-build-user"},
		{name: "explicitly empty falls back", flag: ptr("")},
		{name: "explicit user missing", flag: ptr("cccp-no-such-build-user"), errWants: []string{`"cccp-no-such-build-user"`, "--build-user="}},
		{name: "default user without subordinate ids", value: "daemon", errWants: []string{`"daemon"`, "no subordinate ids", "--build-user="}},
		{name: "explicit user without subordinate ids", flag: ptr("daemon"), errWants: []string{"no subordinate ids"}},
		{name: "default user usable", value: "cccp-build", enabled: true},
		// Not root: buildah is rootless, RUN steps cannot be host root.
		{name: "not root, default user usable", value: "cccp-build", euid: 1000, logWants: "does not run as root"},
		{name: "not root, explicit user without subordinate ids", flag: ptr("daemon"), euid: 1000, logWants: "does not run as root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f envFlags
			cmd := &cobra.Command{}
			f.register(cmd, true)
			if tt.flag != nil {
				if err := cmd.Flags().Set("build-user", *tt.flag); err != nil {
					t.Fatal(err)
				}
			} else {
				f.buildUser = tt.value
			}
			var logs bytes.Buffer
			r, err := openBuildIDsAs(&f, slog.New(slog.NewTextHandler(&logs, nil)), tt.euid)
			if len(tt.errWants) > 0 {
				if err == nil {
					t.Fatalf("openBuildIDs = nil error; want a refusal (logged: %s)", logs.String())
				}
				for _, w := range tt.errWants {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (r != nil) != tt.enabled {
				t.Errorf("ranges = %v, want enabled %v", r, tt.enabled)
			}
			if tt.logWants == "" {
				tt.logWants = "as root on this host"
			}
			if !tt.enabled && !strings.Contains(logs.String(), tt.logWants) {
				t.Errorf("the fallback is not logged (%q): %q", tt.logWants, logs.String())
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestBuildUsernsMetric: /metrics tells whether builds are mapped.
func TestBuildUsernsMetric(t *testing.T) {
	for on, want := range map[bool]string{true: "cccp_build_userns_enabled 1\n", false: "cccp_build_userns_enabled 0\n"} {
		var b bytes.Buffer
		if err := buildUsernsMetric(on)(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "# TYPE cccp_build_userns_enabled gauge\n") || !strings.HasSuffix(b.String(), want) {
			t.Errorf("metric(%v) = %q, want a gauge ending %q", on, b.String(), want)
		}
	}
}

// TestServeBuildUserFromConfig: cccp serve takes the build user from
// pipeline.build.user with --build-user's rules: unset is cccp-build (root
// builds only when it does not exist), "" is root knowingly, and a user
// that is set and cannot be used stops cccp. (serve passed no build user
// at all before, so every build ran its RUN steps as the host's root.)
func TestServeBuildUserFromConfig(t *testing.T) {
	tests := []struct {
		yaml    string
		user    string
		set     bool
		refused bool
	}{
		{yaml: "backend: local\n", user: DefaultBuildUser},
		{yaml: "user: cccp-build\n", user: DefaultBuildUser},
		{yaml: "user: \"\"\n", user: "", set: true},
		{yaml: "user: cccp-no-such-build-user\n", user: "cccp-no-such-build-user", set: true, refused: true},
	}
	for _, tt := range tests {
		var b buildStageConfig
		if err := yaml.Unmarshal([]byte(tt.yaml), &b); err != nil {
			t.Fatal(err)
		}
		f := envFlags{}
		f.buildUser, f.buildUserSet = b.buildUser()
		if f.buildUser != tt.user || f.buildUserSet != tt.set {
			t.Errorf("%q: build user %q (set %v), want %q (set %v)", tt.yaml, f.buildUser, f.buildUserSet, tt.user, tt.set)
		}
		_, err := openBuildIDsAs(&f, slog.New(slog.DiscardHandler), 0)
		if (err != nil) != tt.refused {
			t.Errorf("%q: openBuildIDs: %v, want refused %v", tt.yaml, err, tt.refused)
		}
	}
}
