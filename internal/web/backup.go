package web

import (
	"net/http"
)

// apiBackup streams a consistent copy of the run database (a bbolt file),
// taken in one read transaction while cccp keeps running: `cccp backup`
// fetches it. Admins only: the database holds every run of every project.
func (s *Server) apiBackup(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Backup == nil {
		s.apiError(w, http.StatusNotFound, "backups are not enabled on this server")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="cccp.db"`)
	w.Header().Set("Cache-Control", "no-store")
	n, err := s.cfg.Backup.Backup(r.Context(), w)
	if err != nil {
		// The status is sent; the client sees a short body and the
		// database does not open.
		s.log.Error("backup failed", "bytes", n, "err", err)
		return
	}
	s.log.Info("backup served", "bytes", n)
}
