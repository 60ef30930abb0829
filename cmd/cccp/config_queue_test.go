package main

import (
	"maps"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/types"
)

func TestQueueLimitsConfig(t *testing.T) {
	const base = "index: {path: /srv/index}\n"
	for _, tc := range []struct {
		name    string
		content string
		want    map[types.StageName]int
		wantErr []string
	}{
		{name: "no limits by default", content: base, want: map[types.StageName]int{}},
		{name: "both limits", content: base + "pipeline: {workers: 4, build: {max_concurrent: 1}, test: {max_concurrent: 3}}\n",
			want: map[types.StageName]int{types.StageBuild: 1, types.StageTest: 3}},
		{name: "zero is no limit", content: base + "pipeline: {build: {max_concurrent: 0}, test: {max_concurrent: 2}}\n",
			want: map[types.StageName]int{types.StageTest: 2}},
		{name: "negative limits", content: base + "pipeline: {build: {max_concurrent: -1}, test: {max_concurrent: -2}}\n",
			wantErr: []string{"pipeline.build.max_concurrent must be 0 (no limit but pipeline.workers) or more, not -1",
				"pipeline.test.max_concurrent must be 0 (no limit but pipeline.workers) or more, not -2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadServeConfig(writeConfig(t, tc.content), envMap(nil))
			if len(tc.wantErr) > 0 {
				for _, w := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v; want it to say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.maxConcurrent(); !maps.Equal(got, tc.want) {
				t.Errorf("limits %v, want %v", got, tc.want)
			}
		})
	}
}
