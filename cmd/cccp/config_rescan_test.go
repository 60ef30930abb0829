package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// pipeline.rescan.spread: its default, which a short schedule shortens,
// the explicit 0 (all at once), and the values refused.
func TestRescanSpreadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, rescan string
		want         time.Duration
		wantErr      []string
	}{
		{name: "default", rescan: "{}", want: time.Hour},
		{name: "set", rescan: "{spread: 3h}", want: 3 * time.Hour},
		{name: "zero is all at once", rescan: "{spread: 0}", want: 0},
		{name: "zero as a duration", rescan: "{spread: 0s}", want: 0},
		{name: "default halved for a schedule every 30m", rescan: `{schedule: "*/30 * * * *"}`, want: 15 * time.Minute},
		{name: "old form keeps a default that fits", rescan: "12h", want: time.Hour},
		{name: "negative", rescan: "{spread: -1h}", wantErr: []string{"pipeline.rescan.spread", "negative"}},
		{name: "not a duration", rescan: "{spread: hourly}", wantErr: []string{"hourly"}},
		{name: "as long as the schedule's period", rescan: `{schedule: "@daily", spread: 24h}`,
			wantErr: []string{"pipeline.rescan.spread", "24h0m0s is not shorter than the 24h0m0s between two scheduled rescans"}},
		{name: "off ignores it", rescan: "{schedule: off, spread: 48h}", want: 48 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadServeConfig(writeConfig(t, "index: {path: /srv/index}\npipeline: {rescan: "+tc.rescan+"}\n"), envMap(nil))
			if len(tc.wantErr) > 0 {
				for _, w := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Fatalf("err = %v, want one saying %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Pipeline.Rescan.spread(); got != tc.want {
				t.Errorf("spread = %s, want %s", got, tc.want)
			}
		})
	}
}

// The example file and the chart's values set the spread to its default,
// and both load.
func TestRescanSpreadShipped(t *testing.T) {
	c, err := loadServeConfig(exampleConfig, envMap(exampleSecrets))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Pipeline.Rescan.spread(); got != time.Hour {
		t.Errorf("example config: spread %s, want 1h", got)
	}
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(values.Config)
	if err != nil {
		t.Fatal(err)
	}
	c, err = loadServeConfig(writeConfig(t, string(out)), envMap(map[string]string{"CCCP_ADMIN_TOKENS": "a"}))
	if err != nil {
		t.Fatalf("the chart's config: %v\n%s", err, out)
	}
	if got := c.Pipeline.Rescan.spread(); got != time.Hour {
		t.Errorf("chart values: spread %s, want 1h", got)
	}
}
