package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/store"
)

// newBackupCommand fetches a consistent copy of a running cccp's database
// from its GET /api/v1/backup (one bbolt read transaction; cccp keeps
// running), checks that it opens, and only then puts it at FILE. A second
// process cannot open the database itself while cccp serves: bbolt locks
// the file.
func newBackupCommand() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "backup --url URL FILE",
		Short: "Copy a running cccp's database to FILE, consistently (admin token in CCCP_ADMIN_TOKEN)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token := os.Getenv("CCCP_ADMIN_TOKEN")
			if token == "" {
				return errors.New("backup: set CCCP_ADMIN_TOKEN to one of the server's admin tokens")
			}
			n, err := backup(cmd.Context(), http.DefaultClient, url, token, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d bytes\n", args[0], n)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8080", "cccp's base URL")
	return cmd
}

// backup downloads base/api/v1/backup into a temporary file next to dst,
// opens it as a store (so a torn or truncated copy is an error), and
// renames it to dst.
func backup(ctx context.Context, client *http.Client, base, token, dst string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/api/v1/backup", nil)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("backup: %s answered %s: %s", req.URL.Redacted(), resp.Status, strings.TrimSpace(string(msg)))
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: no such file
	n, err := io.Copy(tmp, resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("backup: write %s: %w", tmp.Name(), err)
	}
	db, err := store.Open(tmp.Name(), store.Options{Timeout: time.Second})
	if err != nil {
		return n, fmt.Errorf("backup: the copy (%d bytes) does not open: %w", n, err)
	}
	if err := db.Close(); err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}
