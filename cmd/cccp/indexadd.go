package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/onboard"
)

// newIndexAddCommand is the command-line twin of the web UI's onboarding
// form: the same validation (the index linter, with the existing index for
// duplicates and dependencies), the same rendering into
// index.d/<app-id>.yaml, existing text and comments kept byte for byte.
func newIndexAddCommand() *cobra.Command {
	var (
		root  string
		e     index.Entry
		email []string
		deps  []string
		tags  []string
	)
	cmd := &cobra.Command{
		Use:   "add --index PATH --app-id APP --job-id JOB --git-url URL [flags]",
		Short: "Add a project to a local index (what the web UI's onboarding form does)",
		Long: `add validates a new index entry with the same rules as 'cccp index lint', against
the existing index (duplicates, dependencies), and appends it to
index.d/<app-id>.yaml, creating the file if needed. Defaults: git-branch master,
git-path /, target-file Dockerfile, desired-tag latest, build-context ./.
Afterwards 'cccp run --index PATH APP/JOB' builds it, or a running 'cccp serve'
picks it up from the web UI.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if root == "" || e.AppID == "" || e.JobID == "" || e.GitURL == "" {
				return usageError{errors.New("--index, --app-id, --job-id and --git-url are required")}
			}
			e.NotifyEmail, e.DependsOn, e.ExtraTags = email, deps, tags
			file, err := onboard.AppendLocal(root, e)
			var invalid *onboard.InvalidError
			if errors.As(err, &invalid) {
				for _, f := range invalid.Findings {
					fmt.Fprintln(cmd.ErrOrStderr(), f)
				}
				return exitError{exitFailure}
			}
			if err != nil {
				return err
			}
			full := onboard.WithDefaults(e)
			fmt.Fprintf(cmd.OutOrStdout(), "added %s to %s\n", full.Key(), file)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "index", "", "the index repository or folder to add to")
	f.StringVar(&e.AppID, "app-id", "", "namespace of the image (the index.d file's name)")
	f.StringVar(&e.JobID, "job-id", "", "name of the image")
	f.StringVar(&e.GitURL, "git-url", "", "the application's git repository")
	f.StringVar(&e.GitBranch, "git-branch", "", "branch to build (default master)")
	f.StringVar(&e.GitPath, "git-path", "", "folder of the Dockerfile in the repository (default /)")
	f.StringVar(&e.TargetFile, "target-file", "", "the Dockerfile's name (default Dockerfile)")
	f.StringVar(&e.DesiredTag, "desired-tag", "", "tag to deliver (default latest)")
	f.StringArrayVar(&tags, "desired-tags", nil, "more tags to deliver the same image under (repeatable)")
	f.StringVar(&e.BuildContext, "build-context", "", "build context relative to git-path (default ./)")
	f.StringArrayVar(&email, "notify-email", nil, "who hears about builds (repeatable)")
	f.StringArrayVar(&deps, "depends-on", nil, "parent image, [registry/]namespace/name[:tag] (repeatable)")
	f.StringVar(&e.PrebuildScript, "prebuild-script", "", "script run before the build")
	f.StringVar(&e.PrebuildContext, "prebuild-context", "", "folder the prebuild script runs in")
	return cmd
}
