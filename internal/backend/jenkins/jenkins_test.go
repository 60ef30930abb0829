package jenkins_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/jenkins"
	"github.com/cccp-project/cccp/internal/backend/jenkins/jenkinstest"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/types"
)

const image = "registry.example.com/app/job@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

func spec() backend.TestSpec {
	return backend.TestSpec{
		RunID: "42", Kind: types.KindBranch,
		Entry: &index.Entry{AppID: "app", JobID: "job", DesiredTag: "latest", GitURL: "https://git.example.com/app/job.git",
			GitPath: "/", TargetFile: "Dockerfile"},
		Src:   backend.Source{GitURL: "https://git.example.com/app/job.git", Commit: "9fceb02d0ae598e95dc970b74767f19372d61af8", Branch: "master"},
		Image: image,
	}
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTester(t *testing.T, j *jenkinstest.Server, change ...func(*jenkins.Config)) (*jenkins.Tester, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg := jenkins.Config{
		URL: j.URL, User: j.User, Token: j.Token, Job: jenkinstest.Job,
		Poll: time.Millisecond, Backoff: 5 * time.Millisecond, Outage: 10 * time.Second, RequestTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, c := range change {
		c(&cfg)
	}
	tr, err := jenkins.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr, logs
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// paths returns "METHOD /path" of every call, in order.
func paths(calls []jenkinstest.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Method+" "+c.Path)
	}
	return out
}

func TestStartTestQueuesWithParameters(t *testing.T) {
	for _, crumbs := range []bool{true, false} {
		t.Run("crumbs="+strconv.FormatBool(crumbs), func(t *testing.T) {
			j := jenkinstest.New(t)
			j.Crumbs = crumbs
			tr, _ := newTester(t, j)
			h, err := tr.StartTest(ctx(t), spec())
			if err != nil {
				t.Fatal(err)
			}
			if h != "job/cccp-test/queue/7" {
				t.Errorf("handle = %q, want job/cccp-test/queue/7", h)
			}
			calls := j.Calls()
			want := []string{"GET /crumbIssuer/api/json", "POST /job/cccp-test/buildWithParameters"}
			if got := paths(calls); !slices.Equal(got, want) {
				t.Fatalf("calls = %q, want %q", got, want)
			}
			post := calls[1]
			if crumbs && post.Crumb == "" {
				t.Errorf("POST without the Jenkins-Crumb header while CSRF protection is on")
			}
			if !crumbs && post.Crumb != "" {
				t.Errorf("POST sent a crumb %q though Jenkins issues none", post.Crumb)
			}
			for _, c := range calls {
				if !c.AuthOK || c.User != "cccp" {
					t.Errorf("%s: not authenticated as cccp with its token", c)
				}
			}
			wantForm := url.Values{
				"IMAGE": {image}, "ENTRY": {"app/job:latest"}, "TEST_SCRIPT": {""}, "RUN_ID": {"42"},
				"SOURCE_URL": {"https://git.example.com/app/job.git"}, "SOURCE_COMMIT": {"9fceb02d0ae598e95dc970b74767f19372d61af8"},
				"GIT_PATH": {"/"}, "TARGET_FILE": {"Dockerfile"},
			}
			if got := post.Form.Encode(); got != wantForm.Encode() {
				t.Errorf("parameters =\n%s\nwant\n%s", got, wantForm.Encode())
			}
			if len(post.Query) != 0 {
				t.Errorf("parameters in the query %q; they go in the form body", post.Query.Encode())
			}
		})
	}
}

func TestStartTestRefusesATagReference(t *testing.T) {
	j := jenkinstest.New(t)
	tr, _ := newTester(t, j)
	s := spec()
	s.Image = "registry.example.com/app/job:latest"
	if _, err := tr.StartTest(ctx(t), s); err == nil || !strings.Contains(err.Error(), "by digest") {
		t.Fatalf("err = %v, want a by-digest error", err)
	}
	if n := len(j.Calls()); n != 0 {
		t.Errorf("%d calls to Jenkins for a spec that cannot run", n)
	}
}

func TestStartTestErrors(t *testing.T) {
	tests := []struct {
		name       string
		change     func(*jenkins.Config)
		wantReason string
		wantText   string
	}{
		{"a job that does not exist", func(c *jenkins.Config) { c.Job = "no-such-job" }, "NotFound", "job/no-such-job/buildWithParameters"},
		{"a refused API token", func(c *jenkins.Config) { c.Token = "0000wrong-token-0000" }, "Unauthorized", `user "cccp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := jenkinstest.New(t)
			j.Crumbs = true
			tr, logs := newTester(t, j, tt.change)
			_, err := tr.StartTest(ctx(t), spec())
			var se *backend.StageError
			if !errors.As(err, &se) || se.Reason != tt.wantReason {
				t.Fatalf("err = %v, want a StageError %s", err, tt.wantReason)
			}
			if !strings.Contains(se.Message, tt.wantText) {
				t.Errorf("message %q does not say %q", se.Message, tt.wantText)
			}
			for _, secret := range []string{"0000wrong-token-0000", j.Token} {
				if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("the token reached an error or a log line: %v\n%s", err, logs)
				}
			}
			for _, c := range j.Calls() {
				if c.Method == "POST" && c.Path == "/job/cccp-test/buildWithParameters" {
					t.Errorf("queued a build despite %s", tt.name)
				}
			}
		})
	}
}

func TestStaleCrumbIsFetchedAgainOnce(t *testing.T) {
	j := jenkinstest.New(t)
	j.Crumbs = true
	tr, _ := newTester(t, j)
	if _, err := tr.StartTest(ctx(t), spec()); err != nil {
		t.Fatal(err)
	}
	j.RotateCrumb() // Jenkins restarted: the session and its crumb are gone
	if _, err := tr.StartTest(ctx(t), spec()); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /crumbIssuer/api/json", "POST /job/cccp-test/buildWithParameters",
		"POST /job/cccp-test/buildWithParameters", "GET /crumbIssuer/api/json", "POST /job/cccp-test/buildWithParameters"}
	if got := paths(j.Calls()); !slices.Equal(got, want) {
		t.Fatalf("calls =\n%q\nwant\n%q", got, want)
	}
}

func TestQueueWaitsThenStarts(t *testing.T) {
	j := jenkinstest.New(t)
	j.Queue(jenkinstest.Script{Queue: []string{"waiting", "blocked", "buildable"}, Result: "UNSTABLE"})
	tr, _ := newTester(t, j)
	h, err := tr.StartTest(ctx(t), spec())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	off, err := tr.Log(ctx(t), h, 0, &out)
	if err != nil {
		t.Fatal(err)
	}
	wantStart := "jenkins: waiting in the queue: In the quiet period. Expires in 4.9 sec\n" +
		"jenkins: waiting in the queue: Build #11 is already in progress (ETA: 23 min)\n" +
		"jenkins: waiting in the queue: Waiting for next available executor on ‘podman’\n" +
		"jenkins: started job/cccp-test/12\n"
	if got := out.String(); got != wantStart+j.Console() {
		t.Errorf("log =\n%s\nwant\n%s", got, wantStart+j.Console())
	}
	if off == 0 {
		t.Errorf("offset 0 after a whole log")
	}
	res, err := tr.WaitTest(ctx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Checks) != len(types.Checks) {
		t.Fatalf("%d checks, want %d", len(res.Checks), len(types.Checks))
	}
	us := res.Checks[len(res.Checks)-1]
	if us.Name != types.CheckUserScript || us.State != backend.CheckFailed || us.Summary != "test script exited 1" || len(us.Findings) != 1 {
		t.Errorf("user-script = %+v, want the recorded failure", us)
	}
	var queuePolls int
	for _, c := range j.Calls() {
		if c.Path == "/queue/item/7/api/json" {
			queuePolls++
		}
	}
	// Log polled the queue 4 times (3 waits, then the build); WaitTest
	// knew the build number from then on.
	if queuePolls != 4 {
		t.Errorf("queue item asked %d times, want 4", queuePolls)
	}
}

func TestCancelledQueueItem(t *testing.T) {
	j := jenkinstest.New(t)
	j.Queue(jenkinstest.Script{Queue: []string{"buildable"}, Cancel: true})
	tr, _ := newTester(t, j)
	h, err := tr.StartTest(ctx(t), spec())
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.WaitTest(ctx(t), h)
	var se *backend.StageError
	if !errors.As(err, &se) || se.Reason != "Cancelled" {
		t.Fatalf("err = %v, want a StageError Cancelled", err)
	}
	var out bytes.Buffer
	off, err := tr.Log(ctx(t), h, 0, &out)
	if err != nil || off != 0 {
		t.Errorf("Log = %d, %v; want 0, nil for an item that never ran", off, err)
	}
	for _, c := range j.Calls() {
		if strings.Contains(c.Path, "progressiveText") {
			t.Errorf("asked for a log of a build that never was: %s", c)
		}
	}
}

func TestProgressiveLogInChunks(t *testing.T) {
	j := jenkinstest.New(t)
	j.Queue(jenkinstest.Script{Steps: 4})
	tr, _ := newTester(t, j)
	h, err := tr.StartTest(ctx(t), spec())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	off, err := tr.Log(ctx(t), h, 0, &out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimPrefix(out.String(), "jenkins: started job/cccp-test/12\n"), j.Console(); got != want {
		t.Errorf("log =\n%q\nwant\n%q", got, want)
	}
	// The offsets are Jenkins' raw positions (annotations counted), each
	// request starting where the previous X-Text-Size said.
	var starts []string
	for _, c := range j.Calls() {
		if c.Path == "/job/cccp-test/12/logText/progressiveText" {
			starts = append(starts, c.Query.Get("start"))
		}
	}
	if len(starts) != 4 || starts[0] != "0" {
		t.Fatalf("progressiveText starts = %q, want 4 requests from 0", starts)
	}
	for i := 1; i < len(starts); i++ {
		a, _ := strconv.Atoi(starts[i-1])
		b, _ := strconv.Atoi(starts[i])
		if b <= a {
			t.Errorf("start %d after %d: not moving on", b, a)
		}
	}
	if int(off) <= len(j.Console()) {
		t.Errorf("offset %d is not the raw console size (> %d stripped bytes)", off, len(j.Console()))
	}

	// Reattach: a restarted cccp follows from a stored offset and gets
	// the rest only.
	mid, _ := strconv.ParseInt(starts[2], 10, 64)
	tr2, _ := newTester(t, j)
	var rest bytes.Buffer
	off2, err := tr2.Log(ctx(t), "job/cccp-test/12", mid, &rest)
	if err != nil {
		t.Fatal(err)
	}
	if off2 != off || rest.Len() == 0 || !strings.HasSuffix(j.Console(), rest.String()) || rest.Len() >= len(j.Console()) {
		t.Errorf("reattached log = %q (offset %d), want the end of the console (offset %d)", rest.String(), off2, off)
	}
}

func TestResults(t *testing.T) {
	tests := []struct {
		script     jenkinstest.Script
		wantReason string // "" for checks
	}{
		{jenkinstest.Script{Result: "SUCCESS"}, ""},
		{jenkinstest.Script{Result: "UNSTABLE"}, ""},
		{jenkinstest.Script{Result: "FAILURE"}, "JenkinsFailure"},
		{jenkinstest.Script{Result: "ABORTED"}, "Aborted"},
		{jenkinstest.Script{Result: "NOT_BUILT"}, "NotBuilt"},
		{jenkinstest.Script{Result: "SUCCESS", NoResults: true}, "NoResults"},
		{jenkinstest.Script{Result: "SUCCESS", Results: []byte(`{"version": 2, "checks": []}`)}, "BadResults"},
		{jenkinstest.Script{Result: "SUCCESS", Results: []byte(`{"version": 1, "checks": [{"name": "rm -rf", "state": "passed"}]}`)}, "BadResults"},
	}
	for _, tt := range tests {
		name := tt.script.Result
		if tt.script.NoResults || tt.script.Results != nil {
			name += "/" + tt.wantReason
		}
		t.Run(name, func(t *testing.T) {
			j := jenkinstest.New(t)
			j.Queue(tt.script)
			tr, _ := newTester(t, j)
			h, err := tr.StartTest(ctx(t), spec())
			if err != nil {
				t.Fatal(err)
			}
			res, err := tr.WaitTest(ctx(t), h)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Checks) != len(types.Checks) {
					t.Errorf("%d checks, want %d", len(res.Checks), len(types.Checks))
				}
				return
			}
			var se *backend.StageError
			if !errors.As(err, &se) || se.Reason != tt.wantReason {
				t.Fatalf("err = %v, want a StageError %s", err, tt.wantReason)
			}
			if !strings.Contains(se.Message, "job/cccp-test/12") {
				t.Errorf("message %q does not name the build", se.Message)
			}
		})
	}
}

func TestCancelAbortsARunningBuild(t *testing.T) {
	j := jenkinstest.New(t)
	j.Crumbs = true
	j.Queue(jenkinstest.Script{Steps: 1000})
	tr, _ := newTester(t, j)
	c := ctx(t)
	h, err := tr.StartTest(c, spec())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	logDone := make(chan error, 1)
	go func() { _, err := tr.Log(c, h, 0, &out); logDone <- err }()
	waitFor(t, func() bool { return hasCall(j, "GET /job/cccp-test/12/logText/progressiveText?start=0") })
	if err := tr.Cancel(c, h); err != nil {
		t.Fatal(err)
	}
	_, err = tr.WaitTest(c, h)
	var se *backend.StageError
	if !errors.As(err, &se) || se.Reason != "Aborted" {
		t.Fatalf("err = %v, want a StageError Aborted", err)
	}
	if err := <-logDone; err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "Finished: ABORTED\n") {
		t.Errorf("log does not end with the abort:\n%s", out.String())
	}
	var stops int
	for _, call := range j.Calls() {
		if call.String() == "POST /job/cccp-test/12/stop" {
			stops++
			if call.Crumb == "" {
				t.Errorf("stop without the crumb")
			}
		}
	}
	if stops != 1 {
		t.Errorf("%d stops, want 1", stops)
	}
	// Cancelling again, or a build Jenkins no longer knows, is no error.
	if err := tr.Cancel(c, h); err != nil {
		t.Errorf("second cancel: %v", err)
	}
	if err := tr.Cancel(c, "job/cccp-test/999"); err != nil {
		t.Errorf("cancel of an unknown build: %v", err)
	}
}

func TestCancelTakesAnItemOutOfTheQueue(t *testing.T) {
	j := jenkinstest.New(t)
	j.Queue(jenkinstest.Script{Queue: slices.Repeat([]string{"buildable"}, 1000)})
	tr, _ := newTester(t, j)
	c := ctx(t)
	h, err := tr.StartTest(c, spec())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Cancel(c, h); err != nil {
		t.Fatal(err)
	}
	if !hasCall(j, "POST /queue/cancelItem?id=7") {
		t.Errorf("no POST /queue/cancelItem?id=7 in %q", j.Calls())
	}
	_, err = tr.WaitTest(c, h)
	var se *backend.StageError
	if !errors.As(err, &se) || se.Reason != "Cancelled" {
		t.Fatalf("err = %v, want a StageError Cancelled", err)
	}
}

func TestReattachAfterTheQueueItemIsForgotten(t *testing.T) {
	j := jenkinstest.New(t)
	j.Queue(jenkinstest.Script{}, jenkinstest.Script{Result: "UNSTABLE"})
	tr, _ := newTester(t, j)
	c := ctx(t)
	h1, _ := tr.StartTest(c, spec())
	h2, err := tr.StartTest(c, spec())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.WaitTest(c, h1); err != nil { // build 12
		t.Fatal(err)
	}
	if _, err := tr.Log(c, h2, 0, &bytes.Buffer{}); err != nil { // build 13 starts and ends
		t.Fatal(err)
	}
	j.ForgetQueue(8) // five minutes pass while cccp restarts

	fresh, _ := newTester(t, j) // a restarted cccp, knowing only the stored handle
	res, err := fresh.WaitTest(c, h2)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Checks) == 0 {
		t.Error("no checks after reattaching")
	}
	if !hasCall(j, "GET /job/cccp-test/api/json?tree=builds%5Bnumber%2CqueueId%5D%7B0%2C100%7D") {
		t.Errorf("did not look the build up by its queue id: %q", j.Calls())
	}
	if !hasCall(j, "GET /job/cccp-test/13/artifact/results.json") {
		t.Errorf("read the results of another build than 13: %q", j.Calls())
	}
}

func TestJenkinsGoesAwayMidBuildAndComesBack(t *testing.T) {
	j := jenkinstest.New(t)
	var once sync.Once
	j.Queue(jenkinstest.Script{Steps: 6, OnStep: func(step int) {
		if step == 2 {
			once.Do(func() { j.Restart(200*time.Millisecond, 2) })
		}
	}})
	tr, logs := newTester(t, j, func(c *jenkins.Config) { c.Poll = 20 * time.Millisecond })
	c := ctx(t)
	h, err := tr.StartTest(c, spec())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	logDone := make(chan error, 1)
	go func() { _, err := tr.Log(c, h, 0, &out); logDone <- err }()
	res, err := tr.WaitTest(c, h)
	if err != nil {
		t.Fatalf("WaitTest across the restart: %v\n%s", err, logs)
	}
	if len(res.Checks) == 0 {
		t.Error("no checks")
	}
	if err := <-logDone; err != nil {
		t.Fatalf("Log across the restart: %v", err)
	}
	if got := strings.TrimPrefix(out.String(), "jenkins: started job/cccp-test/12\n"); got != j.Console() {
		t.Errorf("log across the restart =\n%q\nwant (no gap, no repeat)\n%q", got, j.Console())
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("no retry logged; did Jenkins go away?\n%s", logs)
	}
	if strings.Contains(logs.String(), j.Token) {
		t.Errorf("the token reached the log")
	}
}

func TestJenkinsThatStaysAwayFails(t *testing.T) {
	j := jenkinstest.New(t)
	tr, logs := newTester(t, j, func(c *jenkins.Config) { c.Outage = 100 * time.Millisecond })
	c := ctx(t)
	h, err := tr.StartTest(c, spec())
	if err != nil {
		t.Fatal(err)
	}
	j.Down()
	_, err = tr.WaitTest(c, h)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v, want Jenkins unreachable", err)
	}
	if strings.Contains(err.Error(), j.Token) || strings.Contains(logs.String(), j.Token) {
		t.Errorf("the token reached an error or a log line")
	}
}

func TestNew(t *testing.T) {
	ok := jenkins.Config{URL: "https://jenkins.example.com/", User: "cccp", Token: "tok-en-1234", Job: "folder/cccp-test"}
	tests := []struct {
		name   string
		change func(*jenkins.Config)
		want   string // "" for no error
	}{
		{"valid", func(*jenkins.Config) {}, ""},
		{"no url", func(c *jenkins.Config) { c.URL = "" }, "url is required"},
		{"ftp", func(c *jenkins.Config) { c.URL = "ftp://jenkins" }, "want http(s)"},
		{"credentials in the url", func(c *jenkins.Config) { c.URL = "https://cccp:tok-en-1234@jenkins.example.com/" }, "no credentials in the URL"},
		{"no user", func(c *jenkins.Config) { c.User = "" }, "user is required"},
		{"no token", func(c *jenkins.Config) { c.Token = "" }, "token is required"},
		{"no job", func(c *jenkins.Config) { c.Job = "" }, "empty job name"},
		{"dot-dot job", func(c *jenkins.Config) { c.Job = "a/../b" }, "bad job name"},
		{"missing ca file", func(c *jenkins.Config) { c.CAFile = "/nonexistent/ca.pem" }, "ca file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			_, err := jenkins.New(cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "tok-en-1234") {
				t.Errorf("the token is in the error: %v", err)
			}
		})
	}
}

func TestBadHandles(t *testing.T) {
	j := jenkinstest.New(t)
	tr, _ := newTester(t, j)
	for _, h := range []backend.Handle{"", "12", "job/x", "job/x/0", "job/x/-1", "job/x/queue/abc", "build/x/12", "job/../12", "job/x/job/12/extra/5"} {
		if _, err := tr.WaitTest(ctx(t), h); err == nil {
			t.Errorf("WaitTest(%q): no error", h)
		}
	}
	if n := len(j.Calls()); n != 0 {
		t.Errorf("%d calls for bad handles", n)
	}
}

func hasCall(j *jenkinstest.Server, s string) bool {
	for _, c := range j.Calls() {
		if c.String() == s {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*jenkinstest.Server)
		change func(*jenkins.Config)
		want   string // "" for no error
	}{
		{"a job that takes cccp's parameters", func(*jenkinstest.Server) {}, nil, ""},
		{"a job that never ran", func(j *jenkinstest.Server) { j.Unparameterized = true }, nil, "does not declare the parameters IMAGE, ENTRY"},
		{"no such job", func(*jenkinstest.Server) {}, func(c *jenkins.Config) { c.Job = "nope" }, "NotFound"},
		{"a refused token", func(*jenkinstest.Server) {}, func(c *jenkins.Config) { c.Token = "0000wrong-token-0000" }, "Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := jenkinstest.New(t)
			tt.setup(j)
			var ch []func(*jenkins.Config)
			if tt.change != nil {
				ch = append(ch, tt.change)
			}
			tr, _ := newTester(t, j, ch...)
			err := tr.Check(ctx(t))
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if calls := j.Calls(); len(calls) != 1 || calls[0].Query.Get("tree") != "property[parameterDefinitions[name]]" {
				t.Errorf("calls = %q, want one GET of the job's parameters", calls)
			}
		})
	}
}

func TestUnparameterizedJobIsExplained(t *testing.T) {
	j := jenkinstest.New(t)
	j.Unparameterized = true
	tr, _ := newTester(t, j)
	_, err := tr.StartTest(ctx(t), spec())
	var se *backend.StageError
	if !errors.As(err, &se) || se.Reason != "BadRequest" || !strings.Contains(se.Message, "is not parameterized") {
		t.Fatalf("err = %v, want a StageError BadRequest quoting Jenkins", err)
	}
}

func TestARedirectingProxyIsExplained(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://jenkins.example.com"+r.URL.Path, http.StatusMovedPermanently)
	}))
	t.Cleanup(proxy.Close)
	tr, err := jenkins.New(jenkins.Config{URL: proxy.URL, User: "cccp", Token: "tok-en-1234", Job: "cccp-test"})
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Check(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "redirected (301) to https://jenkins.example.com/job/cccp-test/api/json") {
		t.Fatalf("err = %v, want the redirect named", err)
	}
}

// A restarted cccp knows only the queue handle: cancelling a build that
// already left the queue stops the build (Jenkins refuses to cancel a left
// item with 500).
func TestCancelAfterRestartStopsTheBuild(t *testing.T) {
	j := jenkinstest.New(t)
	j.Queue(jenkinstest.Script{Steps: 1 << 30})
	tr, _ := newTester(t, j)
	c := ctx(t)
	h, err := tr.StartTest(c, spec())
	if err != nil {
		t.Fatal(err)
	}
	// The build leaves the queue when the double answers a poll of the
	// queue item; the wait is cut only then (a fixed 50 ms could end
	// before the first poll on a loaded machine, and Cancel would then
	// cancel a queue item).
	waitCtx, cancel := context.WithCancel(c)
	waited := make(chan struct{})
	go func() { defer close(waited); tr.WaitTest(waitCtx, h) }()
	waitFor(t, func() bool {
		for _, call := range j.Calls() {
			if call.Method == http.MethodGet && strings.HasPrefix(call.Path, "/queue/item/") {
				return true
			}
		}
		return false
	})
	cancel()
	<-waited

	fresh, _ := newTester(t, j)
	if err := fresh.Cancel(c, h); err != nil {
		t.Fatal(err)
	}
	if !hasCall(j, "POST /job/cccp-test/12/stop") {
		t.Errorf("build 12 not stopped: %q", j.Calls())
	}
	_, err = fresh.WaitTest(c, h)
	var se *backend.StageError
	if !errors.As(err, &se) || se.Reason != "Aborted" {
		t.Errorf("err = %v, want Aborted", err)
	}
}
