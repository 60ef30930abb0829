package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cccp-project/cccp/internal/sbom"
	"github.com/cccp-project/cccp/internal/web"
)

// sbomPanel reads the SBOMs attached to delivered images for the web
// UI's project page.
type sbomPanel struct {
	reg sbom.Registry
}

// doc returns the newest SBOM attached to repository@digest;
// web.ErrNoSBOM when there is none.
func (p sbomPanel) doc(ctx context.Context, repository, digest string) ([]byte, error) {
	ref := repository + "@" + digest
	found, err := sbom.Find(ctx, p.reg, ref)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("SBOM of %s: %w", ref, web.ErrNoSBOM)
	}
	return sbom.Read(ctx, p.reg, found[0])
}

// read returns the packages of the SBOM of repository@digest.
func (p sbomPanel) read(ctx context.Context, repository, digest string) ([]sbom.Package, error) {
	doc, err := p.doc(ctx, repository, digest)
	if err != nil {
		return nil, err
	}
	pkgs, err := sbom.Packages(doc)
	if err != nil {
		return nil, fmt.Errorf("SBOM of %s@%s: %w", repository, digest, err)
	}
	return pkgs, nil
}

func (p sbomPanel) Summary(ctx context.Context, repository, digest, previous string) (web.SBOMSummary, error) {
	pkgs, err := p.read(ctx, repository, digest)
	if err != nil {
		return web.SBOMSummary{}, err
	}
	sum := web.SBOMSummary{Packages: len(pkgs)}
	if previous == "" {
		return sum, nil
	}
	old, err := p.read(ctx, repository, previous)
	switch {
	case errors.Is(err, web.ErrNoSBOM):
		return sum, nil
	case err != nil:
		return web.SBOMSummary{}, err
	}
	d := sbom.Compare(old, pkgs)
	sum.Compared = true
	for _, x := range d.Added {
		sum.Added = append(sum.Added, web.SBOMPackage{Type: x.Type, Name: x.Name, Version: x.Version})
	}
	for _, x := range d.Removed {
		sum.Removed = append(sum.Removed, web.SBOMPackage{Type: x.Type, Name: x.Name, Version: x.Version})
	}
	for _, x := range d.Upgraded {
		sum.Upgraded = append(sum.Upgraded, web.SBOMChange{Type: x.Type, Name: x.Name, From: x.From, To: x.To})
	}
	return sum, nil
}

func (p sbomPanel) Document(ctx context.Context, repository, digest string, w io.Writer) error {
	doc, err := p.doc(ctx, repository, digest)
	if err != nil {
		return err
	}
	if _, err := w.Write(doc); err != nil {
		return fmt.Errorf("write SBOM of %s@%s: %w", repository, digest, err)
	}
	return nil
}
