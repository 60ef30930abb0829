package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/cccp-project/cccp/internal/evidence"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/sbom"
	"github.com/cccp-project/cccp/internal/signing"
)

// signingOptions are serve's signing.* keys (cccp run uses the defaults).
type signingOptions struct {
	keyFile    string
	parents    string
	sbomFormat string
	baseURL    string
}

// openAttester loads the signing key and returns the pipeline's attester
// and parent check.
func openAttester(data string, client *registry.Client, o signingOptions, log *slog.Logger) (pipeline.Attester, pipeline.ParentVerifier, error) {
	var key *signing.Key
	var err error
	if o.keyFile != "" {
		key, err = signing.LoadKey(o.keyFile)
	} else {
		key, err = signing.LoadOrCreateKey(filepath.Join(data, "signing"), log)
	}
	if err != nil {
		return nil, nil, err
	}
	policy, err := evidence.ParsePolicy(o.parents)
	if err != nil {
		return nil, nil, usageError{err}
	}
	format, err := sbom.ParseFormat(o.sbomFormat)
	if err != nil {
		return nil, nil, usageError{err}
	}
	builder := o.baseURL
	if builder == "" {
		builder = "cccp://local"
	}
	a := evidence.New(evidence.Config{
		Signer: signing.NewSigner(key, client, log), SBOM: sbom.NewGenerator(client, version), Registry: client,
		Format: format, BuilderID: builder, Version: version, Logger: log,
	})
	var parents pipeline.ParentVerifier
	if policy != evidence.Off {
		parents = evidence.NewParentCheck(key.Verifier(), client, policy, log)
	}
	return attester{a: a, baseURL: strings.TrimRight(o.baseURL, "/")}, parents, nil
}

// attester adapts evidence.Attester to the pipeline's interface.
type attester struct {
	a       *evidence.Attester
	baseURL string
}

func (x attester) Attest(ctx context.Context, d pipeline.Delivery, log io.Writer) error {
	runURL := ""
	if x.baseURL != "" {
		runURL = x.baseURL + "/runs/" + d.RunID
	}
	e := d.Entry
	res, err := x.a.Attest(ctx, evidence.Delivery{
		Image: d.Image, Kind: d.Kind, Entry: e.Key(),
		Parameters: map[string]string{
			"git-url": e.GitURL, "git-branch": e.GitBranch, "git-path": e.GitPath, "target-file": e.TargetFile,
			"build-context": e.BuildContext, "desired-tag": e.DesiredTag,
		},
		SourceURL: d.GitURL, Commit: d.Commit, Ref: d.Branch, Parents: d.Parents, RunURL: runURL, Started: d.Started,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "cccp: SBOM %s (%d packages), SLSA provenance and signature attached to %s\n", res.SBOM, res.Packages, d.Image)
	return nil
}
