package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/retention"
)

func TestRetentionConfig(t *testing.T) {
	tests := []struct {
		name, yaml, err string
	}{
		{"policy", "retention:\n  keep_last: 5\n  keep_for: 48h\n  kinds: [pr, trial]\n  mirrors_unused_for: 240h\n", ""},
		{"negative mirrors_unused_for", "retention:\n  mirrors_unused_for: -1h\n", "retention.mirrors_unused_for must not be negative"},
		{"unknown kind", "retention:\n  keep_last: 5\n  kinds: [prs]\n", `retention.kinds: "prs" is not a run kind`},
		{"negative", "retention:\n  keep_last: -1\n", "retention.keep_last must not be negative"},
		{"unknown key", "retention:\n  keep: 5\n", "keep"},
		{"negative build_cache_unused_for", "retention:\n  build_cache_unused_for: -1h\n", "retention.build_cache_unused_for must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadServeConfig(writeConfig(t, "index:\n  path: /x\n"+tt.yaml), envMap(nil))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one naming %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := c.Retention.policy()
			if !p.Enabled() || p.KeepLast != 5 || p.KeepFor != 48*time.Hour || len(p.Kinds) != 2 || c.Retention.every() != 6*time.Hour {
				t.Errorf("policy %+v every %v", p, c.Retention.every())
			}
			if c.Retention.MirrorsUnusedFor != 240*time.Hour {
				t.Errorf("mirrors_unused_for %v, want 240h", c.Retention.MirrorsUnusedFor)
			}
		})
	}
}

// TestRetentionBuildCacheUnusedFor: unset is the default window, 0 turns
// the pruning of the build storage off, anything else is the window.
func TestRetentionBuildCacheUnusedFor(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		want       time.Duration
	}{
		{"unset", "", retention.DefaultBuildCacheUnusedFor},
		{"off", "retention:\n  build_cache_unused_for: 0s\n", 0},
		{"set", "retention:\n  build_cache_unused_for: 72h\n", 72 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadServeConfig(writeConfig(t, "index:\n  path: /x\n"+tt.yaml), envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Retention.buildCacheUnusedFor(); got != tt.want {
				t.Errorf("build_cache_unused_for %v, want %v", got, tt.want)
			}
		})
	}
}
