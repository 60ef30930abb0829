package pipeline

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

type recordingAttester struct{ rec *recorder }

func (a recordingAttester) Attest(_ context.Context, d Delivery, _ io.Writer) error {
	a.rec.add("attest %s kind=%s commit=%s parents=%s", d.Image, d.Kind, d.Commit, strings.Join(d.Parents, ","))
	return nil
}

type parentVerifier struct {
	rec    *recorder
	refuse string
}

func (p parentVerifier) Verify(_ context.Context, ref string) error {
	p.rec.add("verify parent %s", ref)
	if ref == p.refuse {
		return errors.New("it is not signed by cccp")
	}
	return nil
}

func TestDeliverAttestsBranchRunsBeforeTagging(t *testing.T) {
	h := newHarness(t)
	h.images.digests["reg.test:5000/demo/base:latest"] = digestA
	h.cfg.Attester = recordingAttester{rec: h.rec}
	h.cfg.Parents = parentVerifier{rec: h.rec}
	r := h.start(t)
	run := runAndWait(t, r, Request{Project: "demo/child:latest", Cause: store.Cause{Kind: "manual"}})
	if run.State != store.Passed {
		t.Fatalf("run %s: %s", run.State, run.Error)
	}
	calls := h.rec.list()
	attest := "attest reg.test:5000/demo/child@" + digestA + " kind=branch commit=c0ffee parents=reg.test:5000/demo/base@" + digestA
	ai, ti := slices.Index(calls, attest), slices.Index(calls, "tag reg.test:5000/demo/child@"+digestA+" -> reg.test:5000/demo/child:latest")
	if ai < 0 || ti < 0 || ai > ti {
		t.Errorf("calls %q: want %q before the delivery tag", calls, attest)
	}
	if !slices.Contains(calls, "verify parent reg.test:5000/demo/base@"+digestA) {
		t.Errorf("calls %q: the parent was not verified", calls)
	}

	pr := runAndWait(t, r, Request{Project: "demo/child:latest", Kind: types.KindPR, Cause: store.Cause{Kind: "manual"}})
	if pr.State != store.Passed {
		t.Fatalf("PR run %s: %s", pr.State, pr.Error)
	}
	n := 0
	for _, c := range h.rec.list() {
		if strings.HasPrefix(c, "attest ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d attestations after a branch and a PR run, want 1 (PR images are never signed): %q", n, h.rec.list())
	}
}

func TestUnverifiedParentFailsTheChildBuild(t *testing.T) {
	h := newHarness(t)
	h.images.digests["reg.test:5000/demo/base:latest"] = digestA
	h.cfg.Attester = recordingAttester{rec: h.rec}
	h.cfg.Parents = parentVerifier{rec: h.rec, refuse: "reg.test:5000/demo/base@" + digestA}
	r := h.start(t)
	run := runAndWait(t, r, Request{Project: "demo/child:latest", Cause: store.Cause{Kind: "manual"}})
	if run.State != store.Failed || !strings.Contains(run.Error, "not signed by cccp") {
		t.Fatalf("run %s (%q), want failed because the parent is not signed", run.State, run.Error)
	}
	for _, c := range h.rec.list() {
		if strings.HasPrefix(c, "build ") || strings.HasPrefix(c, "attest ") {
			t.Errorf("%q after the parent was refused", c)
		}
	}
}
