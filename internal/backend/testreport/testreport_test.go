package testreport_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/testreport"
	"github.com/cccp-project/cccp/internal/types"
)

func TestRoundTrip(t *testing.T) {
	in := []backend.CheckResult{
		{Name: types.CheckLint, State: backend.CheckPassed, Summary: "no findings"},
		{Name: types.CheckUserScript, State: backend.CheckFailed, Summary: "test script exited 1",
			Findings: []string{"curl: (7) Failed to connect"}, Explain: []string{"+ curl localhost:8080"}},
		{Name: types.CheckRPMVerify, State: backend.CheckSkipped, Summary: "no rpm"},
	}
	var buf bytes.Buffer
	if err := testreport.Write(&buf, testreport.Report{Image: "r/a/b@sha256:00", Entry: "a/b:latest", RunID: "7", Checks: testreport.FromCheckResults(in)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"version": 1`) {
		t.Errorf("no version in\n%s", buf.String())
	}
	r, err := testreport.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.CheckResults(); !reflect.DeepEqual(got, in) {
		t.Errorf("round trip =\n%+v\nwant\n%+v", got, in)
	}
	if r.Image != "r/a/b@sha256:00" || r.Entry != "a/b:latest" || r.RunID != "7" {
		t.Errorf("header = %+v", r)
	}
}

func TestReadRejects(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name, json, want string
	}{
		{"not json", `{`, "unexpected end"},
		{"no version", `{"checks": []}`, "version 0"},
		{"a newer version", `{"version": 2, "checks": []}`, "version 2"},
		{"an unknown check", `{"version": 1, "checks": [{"name": "exfiltrate", "state": "passed"}]}`, `unknown check "exfiltrate"`},
		{"an unknown state", `{"version": 1, "checks": [{"name": "smoke", "state": "ok"}]}`, `unknown state "ok"`},
		{"a check twice", `{"version": 1, "checks": [{"name": "smoke", "state": "passed"}, {"name": "smoke", "state": "failed"}]}`, "twice"},
		{"a long line", `{"version": 1, "checks": [{"name": "smoke", "state": "failed", "findings": ["` + long + `"]}]}`, "longer than"},
		{"a long summary", `{"version": 1, "checks": [{"name": "smoke", "state": "failed", "summary": "` + long + `"}]}`, "summary"},
		{"too large", `{"version": 1, "image": "` + strings.Repeat("y", testreport.MaxSize) + `"}`, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testreport.Read(strings.NewReader(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	_, err := testreport.Read(strings.NewReader(`{"version": 9}`))
	if !errors.Is(err, testreport.ErrVersion) {
		t.Errorf("err = %v, want ErrVersion", err)
	}
}
