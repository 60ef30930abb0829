package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "cccp",
		Short: "cccp builds, tests and delivers the container images of a container index",
		Long: `cccp is the container pipeline bot. Every entry of a container index
(index.d/<app-id>.yaml) is built from its git repository, tested, and
delivered to a registry; results are reported back to GitHub, GitLab and Gitea.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newVersionCommand(), newRunCommand(), newRunsCommand(), newRetentionCommand(), newLogsCommand(), newDeliveriesCommand())
	root.AddCommand(newIndexCommand(), newRegistryCommand(), newServeCommand(), newTestCommand(localImageChecker), newSessionsCommand(),
		newBackupCommand(), newVerifyCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print cccp's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" && len(s.Value) >= 12 {
						v = "dev-" + s.Value[:12]
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cccp %s\n", v)
			return nil
		},
	}
}
