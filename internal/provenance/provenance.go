// Package provenance writes the SLSA v1 provenance of an image cccp built:
// an in-toto statement whose subject is the image digest and whose
// predicate names the builder, the source repository and exact commit,
// the index entry and its parameters, every parent image by digest, the
// cccp version and the run's URL. Signing and attaching it is the
// signing package's job.
package provenance

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// PredicateType is SLSA provenance v1 (`cosign verify-attestation --type
// slsaprovenance1`).
const PredicateType = "https://slsa.dev/provenance/v1"

// BuildType names how cccp builds: an entry of a container index, from a
// git repository at one commit, with buildah, FROM pinned parents.
const BuildType = "https://github.com/cccp-project/cccp/buildtypes/index-entry/v1"

// Build is what one delivered image was made from.
type Build struct {
	// Image is the image's repository ("host/ns/name") and Digest its
	// manifest digest ("sha256:...").
	Image, Digest string
	// BuilderID identifies this cccp installation (its base URL).
	BuilderID string
	// Version is cccp's version.
	Version string
	// Entry is the index entry ("app/job:tag") and Parameters its
	// fields as the index gives them (git-url, git-branch, git-path,
	// target-file, build-context, desired-tag...).
	Entry      string
	Parameters map[string]string
	// SourceURL is the git repository, Commit the exact commit built,
	// Ref the branch it was taken from.
	SourceURL, Commit, Ref string
	// Parents are the images the build was FROM, by digest.
	Parents []Parent
	// RunURL is the run's page; Started and Finished bound the run.
	RunURL            string
	Started, Finished time.Time
}

// Parent is one image the build was FROM.
type Parent struct {
	// Ref is "host/ns/name@sha256:..." as the Dockerfile was pinned to.
	Ref string
}

// Statement returns the in-toto statement (JSON) for b.
func Statement(b Build) ([]byte, error) {
	algo, hex, ok := strings.Cut(b.Digest, ":")
	if !ok || b.Image == "" {
		return nil, fmt.Errorf("provenance: image %q digest %q: need a repository and a digest", b.Image, b.Digest)
	}
	if b.Commit == "" || b.SourceURL == "" {
		return nil, errors.New("provenance: the source repository and commit are required")
	}
	src := stripUserinfo(b.SourceURL)
	params := map[string]any{}
	for k, v := range b.Parameters {
		if k == "git-url" {
			v = stripUserinfo(v)
		}
		params[k] = v
	}
	ext, err := structpb.NewStruct(map[string]any{
		"entry":      b.Entry,
		"parameters": params,
		"source": map[string]any{
			"uri":    src,
			"ref":    b.Ref,
			"digest": map[string]any{"gitCommit": b.Commit},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("provenance: parameters: %w", err)
	}
	deps := []*intoto.ResourceDescriptor{{
		Uri:         "git+" + src,
		Digest:      map[string]string{"gitCommit": b.Commit},
		Annotations: mustStruct(map[string]any{"ref": b.Ref}),
	}}
	for _, p := range b.Parents {
		repo, dg, ok := strings.Cut(p.Ref, "@")
		pa, ph, ok2 := strings.Cut(dg, ":")
		if !ok || !ok2 {
			return nil, fmt.Errorf("provenance: parent %q is not pinned to a digest", p.Ref)
		}
		deps = append(deps, &intoto.ResourceDescriptor{
			Uri:    "oci://" + p.Ref,
			Name:   repo,
			Digest: map[string]string{pa: ph},
		})
	}
	meta := &slsa.BuildMetadata{InvocationId: b.RunURL}
	if !b.Started.IsZero() {
		meta.StartedOn = timestamppb.New(b.Started)
	}
	if !b.Finished.IsZero() {
		meta.FinishedOn = timestamppb.New(b.Finished)
	}
	pred := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   ext,
			InternalParameters:   mustStruct(map[string]any{"cccpVersion": b.Version}),
			ResolvedDependencies: deps,
		},
		RunDetails: &slsa.RunDetails{
			Builder:  &slsa.Builder{Id: b.BuilderID, Version: map[string]string{"cccp": b.Version}},
			Metadata: meta,
		},
	}
	pj, err := protojson.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	ps := &structpb.Struct{}
	if err := protojson.Unmarshal(pj, ps); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	st := &intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       []*intoto.ResourceDescriptor{{Name: b.Image, Digest: map[string]string{algo: hex}}},
		PredicateType: PredicateType,
		Predicate:     ps,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	out, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return out, nil
}

func mustStruct(m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		// Only called with string values, which always convert.
		panic(err)
	}
	return s
}

// stripUserinfo drops credentials from a URL ("https://tok@host/x" →
// "https://host/x"): a token in a clone URL must not be signed into a
// document anyone can pull.
func stripUserinfo(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}

// Parsed is what Parse reads back from a statement: what a verifier
// shows and compares.
type Parsed struct {
	Subject   []string // "name@algo:hex"
	BuilderID string
	Version   string
	Entry     string
	SourceURL string
	Commit    string
	Ref       string
	Parents   []string // "host/ns/name@sha256:..."
	RunURL    string
}

// Parse reads a SLSA v1 provenance statement.
func Parse(statement []byte) (Parsed, error) {
	var st intoto.Statement
	if err := protojson.Unmarshal(statement, &st); err != nil {
		return Parsed{}, fmt.Errorf("provenance: %w", err)
	}
	if st.GetPredicateType() != PredicateType {
		return Parsed{}, fmt.Errorf("provenance: predicate type %q, want %q", st.GetPredicateType(), PredicateType)
	}
	pj, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return Parsed{}, fmt.Errorf("provenance: %w", err)
	}
	var pred slsa.Provenance
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(pj, &pred); err != nil {
		return Parsed{}, fmt.Errorf("provenance: predicate: %w", err)
	}
	var p Parsed
	for _, s := range st.GetSubject() {
		for algo, hex := range s.GetDigest() {
			p.Subject = append(p.Subject, s.GetName()+"@"+algo+":"+hex)
		}
	}
	bd := pred.GetBuildDefinition()
	ext := bd.GetExternalParameters().AsMap()
	p.Entry, _ = ext["entry"].(string)
	if src, ok := ext["source"].(map[string]any); ok {
		p.SourceURL, _ = src["uri"].(string)
		p.Ref, _ = src["ref"].(string)
		if d, ok := src["digest"].(map[string]any); ok {
			p.Commit, _ = d["gitCommit"].(string)
		}
	}
	for _, d := range bd.GetResolvedDependencies() {
		if ref, ok := strings.CutPrefix(d.GetUri(), "oci://"); ok {
			p.Parents = append(p.Parents, ref)
		}
	}
	p.BuilderID = pred.GetRunDetails().GetBuilder().GetId()
	p.Version = pred.GetRunDetails().GetBuilder().GetVersion()["cccp"]
	p.RunURL = pred.GetRunDetails().GetMetadata().GetInvocationId()
	return p, nil
}
