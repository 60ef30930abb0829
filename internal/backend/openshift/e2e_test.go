package openshift

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/types"
)

// TestE2E builds an image on a real OpenShift cluster, follows its log,
// reads its digest, and cancels a second build. It runs only when
// CCCP_E2E_KUBECONFIG names a kubeconfig; see the README for the other
// variables.
func TestE2E(t *testing.T) {
	kubeconfig := os.Getenv("CCCP_E2E_KUBECONFIG")
	if kubeconfig == "" {
		t.Skip("CCCP_E2E_KUBECONFIG is not set: no OpenShift cluster to build on")
	}
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	ns := env("CCCP_E2E_NAMESPACE", "cccp-e2e")
	gitURL, commit := os.Getenv("CCCP_E2E_GIT_URL"), os.Getenv("CCCP_E2E_GIT_COMMIT")
	if gitURL == "" || commit == "" {
		t.Fatal("CCCP_E2E_GIT_URL and CCCP_E2E_GIT_COMMIT must name a repository with a Dockerfile at its root and a commit of it")
	}
	cfg := Config{
		Namespace: ns, Kubeconfig: kubeconfig, Context: os.Getenv("CCCP_E2E_CONTEXT"),
		PushSecret: os.Getenv("CCCP_E2E_PUSH_SECRET"),
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	push := env("CCCP_E2E_PUSH", "image-registry.openshift-image-registry.svc:5000/"+ns+"/cccp-e2e:test")
	spec := backend.BuildSpec{
		RunID: "e2e-" + time.Now().UTC().Format("20060102150405"), Kind: types.KindBranch,
		Entry: &index.Entry{AppID: "cccp", JobID: "e2e", DesiredTag: "test", GitURL: gitURL,
			GitBranch: env("CCCP_E2E_GIT_BRANCH", ""), TargetFile: "Dockerfile", BuildContext: "./"},
		Src:  backend.Source{GitURL: gitURL, Commit: commit, Branch: os.Getenv("CCCP_E2E_GIT_BRANCH")},
		Push: push,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	h, err := b.StartBuild(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build %s", h)
	var log bytes.Buffer
	logDone := make(chan error, 1)
	go func() { _, err := b.Log(ctx, h, 0, &log); logDone <- err }()
	res, err := b.WaitBuild(ctx, h)
	if err != nil {
		t.Fatalf("build %s: %v", h, err)
	}
	if !strings.HasPrefix(res.Digest, "sha256:") {
		t.Errorf("digest %q", res.Digest)
	}
	if err := <-logDone; err != nil {
		t.Errorf("log: %v", err)
	}
	if log.Len() == 0 {
		t.Error("empty log")
	}

	// A restarted cccp reattaches with the handle alone.
	again, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res2, err := again.WaitBuild(ctx, h); err != nil || res2.Digest != res.Digest {
		t.Errorf("reattached: %+v %v", res2, err)
	}

	spec.RunID += "-cancel"
	h2, err := b.StartBuild(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Cancel(ctx, h2); err != nil {
		t.Fatal(err)
	}
	_, err = b.WaitBuild(ctx, h2)
	var se *backend.StageError
	if !errors.As(err, &se) || se.Reason != "Cancelled" {
		t.Errorf("cancelled build: %v", err)
	}
}
