package runlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Remove deletes every log of run runID (retention). A run without logs
// is not an error.
func (l *Logs) Remove(runID string) error {
	if !nameRE.MatchString(runID) || strings.Contains(runID, "..") {
		return fmt.Errorf("remove logs of run %q: bad name: %w", runID, ErrNotFound)
	}
	if err := os.RemoveAll(filepath.Join(l.dir, runID)); err != nil {
		return fmt.Errorf("remove logs of run %s: %w", runID, err)
	}
	return nil
}
