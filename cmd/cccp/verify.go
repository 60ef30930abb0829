package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/evidence"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/signing"
)

func newVerifyCommand() *cobra.Command {
	var (
		data, key, server string
		insecure          []string
	)
	cmd := &cobra.Command{
		Use:   "verify IMAGE",
		Short: "Check an image's cccp signature and SLSA provenance (against --key FILE, --server URL, or DATA/signing/cosign.pub)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if key != "" && server != "" {
				return usageError{fmt.Errorf("verify: give --key or --server, not both")}
			}
			pub, from, err := publicKey(ctx, data, key, server)
			if err != nil {
				return err
			}
			v, err := signing.ParsePublicKey(pub)
			if err != nil {
				return fmt.Errorf("verify: %s: %w", from, err)
			}
			client := registry.NewClient(registry.ClientConfig{Insecure: insecure})
			rep, err := evidence.Check(ctx, client, v, args[0])
			out := cmd.OutOrStdout()
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "cccp: %s: NOT VERIFIED: %v (key %s from %s)\n", args[0], err, v.ID(), from)
				return exitError{exitFailure}
			}
			p := rep.Provenance
			fmt.Fprintf(out, "%s\n  signature:  ok (key %s)\n  provenance: ok (SLSA v1)\n", rep.Image, rep.KeyID)
			fmt.Fprintf(out, "  source:     %s @ %s (%s)\n  entry:      %s\n", p.SourceURL, p.Commit, p.Ref, p.Entry)
			for _, parent := range p.Parents {
				fmt.Fprintf(out, "  parent:     %s\n", parent)
			}
			fmt.Fprintf(out, "  builder:    %s (cccp %s)\n  run:        %s\n", p.BuilderID, p.Version, p.RunURL)
			for _, s := range rep.SBOMs {
				fmt.Fprintf(out, "  sbom:       %s (%s)\n", s.Ref, s.Format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", defaultDataDir(), "cccp's data folder, for the default key DATA/signing/cosign.pub ($CCCP_DATA)")
	cmd.Flags().StringVar(&key, "key", "", "public key file (PEM), e.g. cosign.pub")
	cmd.Flags().StringVar(&server, "server", "", "a running cccp's base URL; its /api/v1/signing-key is used")
	cmd.Flags().StringArrayVar(&insecure, "insecure-registry", nil, "reach this registry host over plain HTTP (loopback hosts always are)")
	return cmd
}

// publicKey reads the key to verify with and says where it came from.
func publicKey(ctx context.Context, data, key, server string) ([]byte, string, error) {
	switch {
	case server != "":
		u := strings.TrimRight(server, "/") + "/api/v1/signing-key"
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, "", usageError{fmt.Errorf("verify: --server: %w", err)}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, "", fmt.Errorf("verify: fetch the signing key: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, "", fmt.Errorf("verify: fetch the signing key from %s: %s", u, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return nil, "", fmt.Errorf("verify: fetch the signing key: %w", err)
		}
		return b, u, nil
	case key == "":
		key = filepath.Join(data, "signing", signing.PublicKeyFile)
	}
	b, err := os.ReadFile(key)
	if err != nil {
		return nil, "", fmt.Errorf("verify: %w", err)
	}
	return b, key, nil
}

// loadSigningKey reads signing.key_file, or DATA/signing/cosign.key
// (generated at first start, 0600, with cosign.pub beside it).
func loadSigningKey(cfg *serveConfig, log *slog.Logger) (*signing.Key, error) {
	if cfg.Signing.KeyFile != "" {
		return signing.LoadKey(cfg.Signing.KeyFile)
	}
	return signing.LoadOrCreateKey(filepath.Join(cfg.Data, "signing"), log)
}
