package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/store"
)

func newRunsCommand() *cobra.Command {
	var (
		f       envFlags
		project string
		limit   int
	)
	cmd := &cobra.Command{
		Use:   "runs [--project APP-ID/JOB-ID]",
		Short: "List pipeline runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openState(&f, f.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer st.Close()
			runs, err := st.db.Runs(cmd.Context(), store.RunFilter{Project: project, Limit: limit})
			if err != nil {
				return err
			}
			printRuns(cmd.OutOrStdout(), runs)
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&project, "project", "", "only runs of this entry")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many runs")
	return cmd
}

func printRuns(w io.Writer, runs []*store.Run) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPROJECT\tKIND\tSTATE\tCAUSE\tCOMMIT\tCREATED\tDURATION")
	for _, r := range runs {
		dur := "-"
		if !r.Finished.IsZero() && !r.Started.IsZero() {
			dur = r.Finished.Sub(r.Started).Round(100 * time.Millisecond).String()
		}
		commit := r.Commit
		if len(commit) > 12 {
			commit = commit[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Project, r.Kind, r.State, r.Cause.Kind,
			orDash(commit), r.Created.Local().Format("2006-01-02 15:04:05"), dur)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newLogsCommand() *cobra.Command {
	var f envFlags
	cmd := &cobra.Command{
		Use:   "logs RUN [STAGE]",
		Short: "Print a run's stage logs (default: every stage that ran)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openState(&f, f.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer st.Close()
			run, err := st.db.Run(cmd.Context(), args[0])
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("run %s: no such run", args[0])
			} else if err != nil {
				return err
			}
			var stages []string
			if len(args) == 2 {
				stages = []string{args[1]}
			} else {
				for _, s := range run.Stages {
					if s.State != store.Queued && s.State != store.Skipped {
						stages = append(stages, string(s.Name))
					}
				}
			}
			out := cmd.OutOrStdout()
			for _, name := range stages {
				fh, err := st.logs.Open(run.ID, name)
				if err != nil {
					return fmt.Errorf("run %s stage %s: %w", run.ID, name, err)
				}
				if len(stages) > 1 {
					fmt.Fprintf(out, "==> run %s, stage %s <==\n", run.ID, name)
				}
				_, err = io.Copy(out, fh)
				fh.Close()
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}
