package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/web"
)

func newSessionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "Manage the web UI's sign-in sessions",
	}
	var f envFlags
	revoke := &cobra.Command{
		Use:   "revoke",
		Short: "Sign everyone out of the web UI, on every device, before their sessions expire",
		Long: `revoke raises the session generation kept in cccp.db: every session signed
before ends, and everyone signs in again. cccp.db is open in one process at a
time: run it while cccp serve is stopped. While it runs, an admin does the same
with "Sign out everywhere" in the web UI or with
  curl -X POST -H "Authorization: Bearer $ADMIN_TOKEN" https://cccp.example/api/v1/sessions/revoke`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openState(&f, f.logger(cmd.ErrOrStderr()))
			if err != nil {
				return fmt.Errorf("%w (is cccp serve running? use the web UI or the API then)", err)
			}
			defer st.Close()
			n, err := web.StoreSessions(st.db).RevokeSessions(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "all sessions revoked (generation %d)\n", n)
			return nil
		},
	}
	f.register(revoke, false)
	cmd.AddCommand(revoke)
	return cmd
}
