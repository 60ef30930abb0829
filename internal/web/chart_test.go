package web

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// chartRun is a finished run id whose build took build and test took test
// (0: the stage did not run), delivering an image of size bytes.
func chartRun(id int, build, test time.Duration, size int64) *store.Run {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	r := &store.Run{ID: strconv.Itoa(id), Project: "acme/web:latest", Kind: types.KindBranch, State: store.Passed, ImageSize: size}
	at := t0
	for _, s := range []struct {
		name types.StageName
		d    time.Duration
	}{{types.StageBuild, build}, {types.StageTest, test}} {
		st := store.Stage{Name: s.name, State: store.Skipped}
		if s.d > 0 {
			st = store.Stage{Name: s.name, State: store.Passed, Started: at, Finished: at.Add(s.d)}
			at = at.Add(s.d)
		}
		r.Stages = append(r.Stages, st)
	}
	return r
}

func TestRunChartGolden(t *testing.T) {
	var runs []*store.Run // newest first, as the page has them
	for i := 12; i >= 1; i-- {
		size := int64(0)
		if i%3 != 0 {
			size = int64(40+i) << 20
		}
		runs = append(runs, chartRun(i, time.Duration(30+7*i)*time.Second, time.Duration(10+i%4)*time.Second, size))
	}
	runs[0].State = store.Running // not drawn
	runs[3].Stages[1] = store.Stage{Name: types.StageTest, State: store.Skipped}
	got := string(runChart(runs))

	golden := filepath.Join("testdata", "chart.golden.svg")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("chart differs from %s (run with -update after checking it):\n%s", golden, got)
	}
	wellFormed(t, got)
	for _, w := range []string{`role="img"`, `<title id="chart-title">Build and test duration and image size of the last 11 runs</title>`,
		`Newest run #11: build 1m47s, test 13s, image 51.0 MiB.`, `<title>run #11: build 1m47s</title>`} {
		if !strings.Contains(got, w) {
			t.Errorf("chart lacks %q", w)
		}
	}
	if strings.Contains(got, "run #12") {
		t.Error("the running run is drawn")
	}
}

func TestRunChartCases(t *testing.T) {
	hostile := chartRun(2, time.Minute, time.Second, 0)
	hostile.ID = `2"><script>alert(1)</script>`
	tests := []struct {
		name string
		runs []*store.Run
		want []string
		not  []string
	}{
		{"one run: no chart", []*store.Run{chartRun(1, time.Minute, time.Second, 1)}, nil, []string{"<svg"}},
		{"nothing delivered", []*store.Run{chartRun(2, time.Minute, 0, 0), chartRun(1, time.Minute, time.Second, 0)},
			[]string{"No delivered image among these runs.", "<svg"}, []string{"<polyline", "<circle"}},
		{"escaped", []*store.Run{hostile, chartRun(1, time.Minute, time.Second, 0)},
			[]string{"&lt;script&gt;"}, []string{"<script>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(runChart(tt.runs))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("chart lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("chart has %q:\n%s", w, got)
				}
			}
			if got != "" {
				wellFormed(t, got)
			}
		})
	}
}

func TestProjectPageShowsChart(t *testing.T) {
	f := seeded(t)
	f.addRun("acme/web:latest", "branch", store.Cause{Kind: "push"},
		map[types.StageName]store.State{"build": store.Passed, "test": store.Passed, "deliver": store.Passed}, "")
	body := f.get("/projects/acme/web:latest").Body.String()
	if !strings.Contains(body, `<figure class="chart"><svg class="chart"`) || !strings.Contains(body, "<title>run #3: build 42s</title>") {
		t.Errorf("project page lacks the chart:\n%s", body)
	}
}

func wellFormed(t *testing.T, svg string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
	}
}
