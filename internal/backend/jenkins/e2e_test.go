package jenkins_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/jenkins"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/types"
)

// TestE2EJenkins runs the tester against a real Jenkins with the job of
// deploy/jenkins loaded. It is opt-in: see README.md, "End-to-end tests
// against OpenShift and Jenkins".
func TestE2EJenkins(t *testing.T) {
	url, token := os.Getenv("CCCP_E2E_JENKINS_URL"), os.Getenv("CCCP_E2E_JENKINS_TOKEN")
	if url == "" || token == "" {
		t.Skip("CCCP_E2E_JENKINS_URL and CCCP_E2E_JENKINS_TOKEN are not set: no real Jenkins to test against")
	}
	get := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	var missing []string
	need := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}
	image, gitURL, commit := need("CCCP_E2E_JENKINS_IMAGE"), need("CCCP_E2E_JENKINS_GIT_URL"), need("CCCP_E2E_JENKINS_COMMIT")
	if len(missing) > 0 {
		t.Fatalf("a Jenkins is given, but not what to test on it: set %s", strings.Join(missing, ", "))
	}
	tr, err := jenkins.New(jenkins.Config{
		URL: url, User: get("CCCP_E2E_JENKINS_USER", "cccp"), Token: token, Job: get("CCCP_E2E_JENKINS_JOB", "cccp-test"),
		Poll: 2 * time.Second, CAFile: os.Getenv("CCCP_E2E_JENKINS_CA_FILE"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute)
	defer cancel()
	if err := tr.Check(ctx); err != nil {
		t.Fatal(err)
	}
	spec := backend.TestSpec{
		RunID: "e2e-" + time.Now().UTC().Format("20060102T150405"), Kind: types.KindPR,
		Entry: &index.Entry{AppID: "e2e", JobID: "jenkins", DesiredTag: "latest", GitURL: gitURL,
			GitPath: get("CCCP_E2E_JENKINS_GIT_PATH", "/"), TargetFile: get("CCCP_E2E_JENKINS_TARGET_FILE", "Dockerfile")},
		Src:   backend.Source{GitURL: gitURL, Commit: commit},
		Image: image,
	}

	t.Run("a build runs cccp's checks and reports them", func(t *testing.T) {
		h, err := tr.StartTest(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("queued %s", h)
		var log bytes.Buffer
		logDone := make(chan error, 1)
		go func() { _, err := tr.Log(ctx, h, 0, &log); logDone <- err }()
		res, err := tr.WaitTest(ctx, h)
		if lerr := <-logDone; lerr != nil {
			t.Errorf("log: %v", lerr)
		}
		t.Logf("console:\n%s", log.String())
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Checks) != len(types.Checks) {
			t.Errorf("%d checks, want one of each of %d", len(res.Checks), len(types.Checks))
		}
		if !strings.Contains(log.String(), "cccp: testing "+image) {
			t.Errorf("the console does not show cccp test at work")
		}
	})

	t.Run("a cancelled build ends cancelled or aborted", func(t *testing.T) {
		h, err := tr.StartTest(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Cancel(ctx, h); err != nil {
			t.Fatal(err)
		}
		_, err = tr.WaitTest(ctx, h)
		var se *backend.StageError
		if !errors.As(err, &se) || (se.Reason != "Cancelled" && se.Reason != "Aborted") {
			t.Fatalf("err = %v, want Cancelled or Aborted", err)
		}
	})
}
