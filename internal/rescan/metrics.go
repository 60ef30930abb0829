package rescan

import (
	"fmt"
	"io"
)

// WriteMetrics writes the rescans' counters in Prometheus' text format,
// for cccp serve's /metrics.
func (s *Scanner) WriteMetrics(w io.Writer) error {
	_, err := fmt.Fprintf(w, "# HELP cccp_rescan_skipped_total Scheduled rescans skipped because the rescan before was still under way.\n"+
		"# TYPE cccp_rescan_skipped_total counter\ncccp_rescan_skipped_total %d\n", s.skipped.Load())
	return err
}
