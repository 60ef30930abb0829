package web

import (
	"context"
	"fmt"
	"net/http"
)

// DataPart is one part of cccp's data folder (the run database, logs, the
// registry's storage, ...) and its size.
type DataPart struct {
	Name  string
	Bytes int64
}

type statusView struct {
	Parts []dataPartView
	Total string
	Error bool
}

type dataPartView struct {
	Name, Size string
	Bytes      int64
	Percent    int // of the total, for the bar
}

// status is the status page: the size of the data folder by part.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	v := statusView{}
	if s.cfg.DataSizes == nil {
		s.notFound(w, r, "This cccp does not measure its data folder.")
		return
	}
	parts, err := s.cfg.DataSizes(r.Context())
	if err != nil {
		s.log.Warn("status: data folder sizes", "err", err)
		v.Error = true
	}
	var total int64
	for _, p := range parts {
		total += p.Bytes
	}
	for _, p := range parts {
		pv := dataPartView{Name: p.Name, Size: humanBytes(p.Bytes), Bytes: p.Bytes}
		if total > 0 {
			pv.Percent = int(p.Bytes * 100 / total)
		}
		v.Parts = append(v.Parts, pv)
	}
	v.Total = humanBytes(total)
	s.renderTitled(w, r, http.StatusOK, "status", "Status", v)
}

// DataSizesFunc measures the data folder for the status page.
type DataSizesFunc func(ctx context.Context) ([]DataPart, error)

// humanBytes writes n in B, KiB, MiB, GiB or TiB with one decimal.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}
