// Package dockerlint checks a Dockerfile with BuildKit's own parser and
// linter rules, the same ones `docker build --check` reports.
//
// Lint runs two passes of BuildKit code and merges their findings: the
// parse-time rules (instructions.Parse with a linter: StageNameCasing,
// FromAsCasing, MaintainerDeprecated, ...) and dockerfile2llb's lint path,
// which adds the rules checked while the build graph is assembled
// (JSONArgsRecommended, UndefinedVar, LegacyKeyValueFormat,
// WorkdirRelativePath, ...). No image is pulled: base images are resolved
// by an offline resolver that answers with an empty Linux image config for
// the host platform, so rules that need the real base image (for example
// InvalidBaseImagePlatform) cannot fire.
package dockerlint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Finding is one linter warning.
type Finding struct {
	Rule    string // BuildKit rule name, e.g. "StageNameCasing"
	Message string // the rule's detailed message
	Line    int    // 1-based line of the instruction, 0 when unknown
	URL     string // documentation of the rule
}

func (f Finding) String() string {
	if f.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", f.Line, f.Rule, f.Message)
	}
	return fmt.Sprintf("%s: %s", f.Rule, f.Message)
}

// ParseError is a Dockerfile that BuildKit cannot parse or convert.
type ParseError struct {
	Name string // file name as given to Lint
	Line int    // 1-based, 0 when BuildKit did not say
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Name, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Lint parses content (the Dockerfile called name) and returns BuildKit's
// lint warnings, sorted by line. A Dockerfile that does not parse is a
// *ParseError carrying the line. `# check=skip=...` directives in the
// file are honoured as BuildKit honours them.
func Lint(name string, content []byte) ([]Finding, error) {
	if len(bytes.TrimSpace(content)) == 0 {
		return nil, &ParseError{Name: name, Err: errors.New("the Dockerfile is empty")}
	}
	c := collector{seen: map[Finding]bool{}}

	// Pass 1: parse-time rules.
	ast, err := parser.Parse(bytes.NewReader(content))
	if err != nil {
		return nil, parseError(name, err)
	}
	cfg, err := lintConfig(content)
	if err != nil {
		return nil, &ParseError{Name: name, Err: err}
	}
	cfg.Warn = c.warn
	lint := linter.New(cfg)
	for _, w := range ast.Warnings {
		if w.URL == linter.RuleNoEmptyContinuation.URL && w.Location != nil {
			lint.Run(&linter.RuleNoEmptyContinuation, []parser.Range{*w.Location}, linter.RuleNoEmptyContinuation.Format())
		}
	}
	if _, _, err := instructions.Parse(ast.AST, lint); err != nil {
		return nil, parseError(name, err)
	}

	// Pass 2: dockerfile2llb's lint path, offline.
	sm := llb.NewSourceMap(nil, name, "Dockerfile", content)
	sm.Definition = &llb.Definition{} // DockerfileLint records the source; there is no LLB here
	res, err := dockerfile2llb.DockerfileLint(context.Background(), content, dockerfile2llb.ConvertOpt{
		SourceMap:    sm,
		MetaResolver: offlineResolver{},
	})
	if err != nil {
		return nil, &ParseError{Name: name, Err: err}
	}
	if res.Error != nil {
		line := 0
		if len(res.Error.Location.Ranges) > 0 {
			line = int(res.Error.Location.Ranges[0].Start.Line)
		}
		return nil, &ParseError{Name: name, Line: line, Err: errors.New(res.Error.Message)}
	}
	for _, w := range res.Warnings {
		f := Finding{Rule: w.RuleName, Message: w.Detail, URL: w.URL}
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			f.Line = int(w.Location.Ranges[0].Start.Line)
		}
		c.add(f)
	}
	sort.SliceStable(c.out, func(i, j int) bool { return c.out[i].Line < c.out[j].Line })
	return c.out, nil
}

// collector keeps findings in order without duplicates: both passes run
// the parse-time rules.
type collector struct {
	out  []Finding
	seen map[Finding]bool
}

func (c *collector) warn(rule, _, url, msg string, loc []parser.Range) {
	f := Finding{Rule: rule, Message: msg, URL: url}
	if len(loc) > 0 {
		f.Line = loc[0].Start.Line
	}
	c.add(f)
}

func (c *collector) add(f Finding) {
	if c.seen[f] {
		return
	}
	c.seen[f] = true
	c.out = append(c.out, f)
}

func lintConfig(content []byte) (*linter.Config, error) {
	opts, _, _, _ := parser.ParseDirective("check", content)
	cfg, err := linter.ParseLintOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("check directive: %w", err)
	}
	return cfg, nil
}

func parseError(name string, err error) error {
	pe := &ParseError{Name: name, Err: err}
	var loc *parser.LocationError
	if errors.As(err, &loc) && len(loc.Locations) > 0 && len(loc.Locations[0]) > 0 {
		pe.Line = loc.Locations[0][0].Start.Line
	}
	return pe
}

// offlineResolver answers every base image with an empty image config for
// the host platform, so linting never reaches a registry.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	p := platforms.DefaultSpec()
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		p = *opt.ImageOpt.Platform
	}
	img := ocispecs.Image{
		Platform: ocispecs.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
		Config: ocispecs.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		RootFS: ocispecs.RootFS{Type: "layers"},
	}
	dt, err := json.Marshal(img)
	if err != nil {
		return "", "", nil, err
	}
	return ref, digest.FromBytes(dt), dt, nil
}
