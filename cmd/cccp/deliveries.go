package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/store"
)

// newDeliveriesCommand lists the webhook deliveries whose routing failed
// and replays given-up ones: from the data folder when no server runs, or
// through a running server's API with --server (the token from
// $CCCP_TOKEN), since a running server holds the database's lock.
func newDeliveriesCommand() *cobra.Command {
	var (
		f      envFlags
		server string
	)
	cmd := &cobra.Command{
		Use:   "deliveries [--server URL]",
		Short: "List the webhook deliveries whose routing failed (pending retries and given-up ones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ds []store.DeliveryTrouble
			if server != "" {
				var rows []struct {
					Forge, ID, Event, Error string
					Received                time.Time
					Attempts                int
					NextAttempt             time.Time `json:"next_attempt"`
					GivenUp                 bool      `json:"given_up"`
				}
				if err := apiCall(cmd.Context(), http.MethodGet, server, "/api/v1/deliveries", &rows); err != nil {
					return err
				}
				for _, r := range rows {
					ds = append(ds, store.DeliveryTrouble{Forge: r.Forge, ID: r.ID, Event: r.Event, Received: r.Received,
						Attempt: store.Attempt{Attempts: r.Attempts, NextAttempt: r.NextAttempt, LastError: r.Error, Failed: r.GivenUp}})
				}
			} else {
				st, err := openState(&f, f.logger(cmd.ErrOrStderr()))
				if err != nil {
					return fmt.Errorf("%w (is cccp serve running? then use --server)", err)
				}
				defer st.Close()
				if ds, err = st.db.TroubledDeliveries(cmd.Context(), 0); err != nil && ds == nil {
					return err
				}
			}
			printDeliveries(cmd.OutOrStdout(), ds)
			return nil
		},
	}
	replay := &cobra.Command{
		Use:   "replay FORGE/ID... [--server URL]",
		Short: "Route given-up deliveries again",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var db *store.DB
			if server == "" {
				st, err := openState(&f, f.logger(cmd.ErrOrStderr()))
				if err != nil {
					return fmt.Errorf("%w (is cccp serve running? then use --server)", err)
				}
				defer st.Close()
				db = st.db
			}
			for _, a := range args {
				forge, id, ok := strings.Cut(a, "/")
				if !ok || forge == "" || id == "" {
					return usageError{fmt.Errorf("%q: want FORGE/ID, e.g. github/72d3162e-cc78-11e3-81ab-4c9367dc0958", a)}
				}
				var err error
				if db != nil {
					err = db.ReplayDelivery(cmd.Context(), forge, id)
				} else {
					err = apiCall(cmd.Context(), http.MethodPost, server,
						"/api/v1/deliveries/"+url.PathEscape(forge)+"/"+url.PathEscape(id)+"/replay", nil)
				}
				if err != nil {
					return fmt.Errorf("replay %s: %w", a, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "replaying %s\n", a)
			}
			return nil
		},
	}
	for _, c := range []*cobra.Command{cmd, replay} {
		c.Flags().StringVar(&server, "server", "", "a running cccp serve's URL (token from $CCCP_TOKEN)")
	}
	f.register(cmd, false)
	f.register(replay, false)
	cmd.AddCommand(replay)
	return cmd
}

// apiCall calls a running server's API with the token from $CCCP_TOKEN
// and decodes the answer into out (when not nil).
func apiCall(ctx context.Context, method, server, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(server, "/")+path, nil)
	if err != nil {
		return err
	}
	if tok := os.Getenv("CCCP_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

func printDeliveries(w io.Writer, ds []store.DeliveryTrouble) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DELIVERY\tEVENT\tRECEIVED\tATTEMPTS\tSTATE\tREASON")
	for _, d := range ds {
		state := "next attempt " + d.NextAttempt.Local().Format("2006-01-02 15:04:05")
		if d.Failed {
			state = "given up"
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%d\t%s\t%s\n", d.Forge, d.ID, orDash(d.Event),
			d.Received.Local().Format("2006-01-02 15:04:05"), d.Attempts, state, d.LastError)
	}
	tw.Flush()
}
