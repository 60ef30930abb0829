package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/registry"
)

func newRegistryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Serve or collect the embedded registry",
	}
	cmd.AddCommand(newRegistryServeCommand(), newRegistryGCCommand())
	return cmd
}

func newRegistryServeCommand() *cobra.Command {
	var f envFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the embedded registry alone (anonymous pulls, pushes with cccp's credentials) until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			reg, err := registry.Start(ctx, registry.Config{Dir: filepath.Join(f.data, "registry"), Addr: f.registryAddr, Logger: f.logger(cmd.ErrOrStderr())})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "cccp: registry at %s (data in %s); push credentials in %s\n",
				reg.Host(), f.data, filepath.Join(f.data, "registry", "credentials"))
			<-ctx.Done()
			return reg.Close(context.WithoutCancel(ctx))
		},
	}
	f.register(cmd, true)
	return cmd
}

func newRegistryGCCommand() *cobra.Command {
	var (
		f      envFlags
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove untagged manifests and unreferenced blobs from the embedded registry; tagged images are kept",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// The registry's storage must not change under the collection:
			// holding cccp's database lock proves no other cccp uses DATA.
			st, err := openState(&f, f.logger(cmd.ErrOrStderr()))
			if err != nil {
				return fmt.Errorf("%w (is another cccp using %s? stop it first)", err, f.data)
			}
			defer st.Close()
			reg, err := registry.Start(ctx, registry.Config{Dir: filepath.Join(f.data, "registry"), Addr: "127.0.0.1:0", Logger: f.logger(cmd.ErrOrStderr())})
			if err != nil {
				return err
			}
			defer reg.Close(context.WithoutCancel(ctx))
			stats, err := reg.GC(ctx, dryRun)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(stats)
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be removed, remove nothing")
	return cmd
}
