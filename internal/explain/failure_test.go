package explain

import (
	"slices"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

func TestFailure(t *testing.T) {
	log := []string{"2026-11-30T12:00:00Z STEP 1/2: RUN make", "2026-11-30T12:00:01Z compiling", "2026-11-30T12:00:02Z make: *** [all] Error 2"}
	tail := func(stage string) []string {
		if stage != "test" {
			return nil
		}
		return log
	}
	failedTest := store.Stage{Name: types.StageTest, State: store.Failed, Reason: "ChecksFailed", Error: "1 blocking check failed",
		Checks: []store.Check{
			{Name: "lint", State: store.Passed, Explain: []string{"not quoted: passed"}},
			{Name: "user-script", State: store.Failed, Explain: []string{"assert failed: port 8080"}, Findings: []string{"not quoted: Explain wins"}},
			{Name: "package-updates", State: store.Failed, Findings: []string{"openssl 3.0.7 -> 3.0.8"}},
			{Name: "smoke", State: store.Failed, Summary: "container exited 1"},
		}}
	for _, tc := range []struct {
		name      string
		run       store.Run
		tail      func(string) []string
		max       int
		wantStage types.StageName
		want      []string
	}{
		{"passed run", store.Run{Stages: []store.Stage{{Name: types.StageBuild, State: store.Passed}}}, tail, 20, "", nil},
		{"checks, then log lines, then the reason", store.Run{Stages: []store.Stage{{Name: types.StageBuild, State: store.Passed}, failedTest}}, tail, 20, types.StageTest,
			[]string{"user-script: assert failed: port 8080", "package-updates: openssl 3.0.7 -> 3.0.8", "smoke: container exited 1",
				log[0], log[1], log[2], "cccp: ChecksFailed: 1 blocking check failed"}},
		{"at most max log lines, the last ones", store.Run{Stages: []store.Stage{failedTest}}, tail, 1, types.StageTest,
			[]string{"user-script: assert failed: port 8080", "package-updates: openssl 3.0.7 -> 3.0.8", "smoke: container exited 1",
				log[2], "cccp: ChecksFailed: 1 blocking check failed"}},
		{"no log", store.Run{Stages: []store.Stage{{Name: types.StageBuild, State: store.Failed, Error: "exit status 1"}}}, nil, 20, types.StageBuild,
			[]string{"cccp: exit status 1"}},
		{"the first failed stage", store.Run{Stages: []store.Stage{{Name: types.StageBuild, State: store.Failed, Error: "first"}, {Name: types.StageTest, State: store.Failed, Error: "second"}}}, nil, 20, types.StageBuild,
			[]string{"cccp: first"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, got := Failure(&tc.run, tc.tail, tc.max)
			var name types.StageName
			if st != nil {
				name = st.Name
			}
			if name != tc.wantStage || !slices.Equal(got, tc.want) {
				t.Errorf("Failure = %q, %q\nwant %q, %q", name, got, tc.wantStage, tc.want)
			}
		})
	}
}
