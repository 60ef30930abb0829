package retention

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Part is one part of the data folder and its size.
type Part struct {
	Name  string
	Bytes int64
}

// Sizer measures the data folder by part: each configured part is a path
// inside it (a file or a folder); whatever no part claims is "other". A
// measurement walks the folder, so it is kept for MaxAge.
type Sizer struct {
	dir    string
	paths  map[string]string
	maxAge time.Duration

	mu   sync.Mutex
	last []Part
	at   time.Time
}

// NewSizer measures dir; parts maps a part's name to its path relative to
// dir. maxAge <= 0 means one minute.
func NewSizer(dir string, parts map[string]string, maxAge time.Duration) *Sizer {
	if maxAge <= 0 {
		maxAge = time.Minute
	}
	s := &Sizer{dir: dir, paths: map[string]string{}, maxAge: maxAge}
	for name, rel := range parts {
		s.paths[filepath.Clean(rel)] = name
	}
	return s
}

// Sizes returns the size of each part (and "other"), sorted by name, as
// measured at most maxAge ago.
func (s *Sizer) Sizes(ctx context.Context) ([]Part, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil && time.Since(s.at) < s.maxAge {
		return s.last, nil
	}
	sizes := map[string]int64{"other": 0}
	for _, name := range s.paths {
		sizes[name] = 0
	}
	top, err := os.Stat(s.dir)
	if err != nil {
		return nil, fmt.Errorf("measure data folder %s: %w", s.dir, err)
	}
	err = filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed while walking
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			// A mount inside (a running build's merged overlay in the
			// build storage) shows files counted where they lie already.
			if fi, err := d.Info(); err == nil && !sameDevice(top, fi) {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		sizes[s.partOf(p)] += fi.Size()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("measure data folder %s: %w", s.dir, err)
	}
	out := make([]Part, 0, len(sizes))
	for name, n := range sizes {
		out = append(out, Part{Name: name, Bytes: n})
	}
	slices.SortFunc(out, func(a, b Part) int { return strings.Compare(a.Name, b.Name) })
	s.last, s.at = out, time.Now()
	return out, nil
}

// sameDevice tells whether a and b are on one file system.
func sameDevice(a, b fs.FileInfo) bool {
	sa, okA := a.Sys().(*syscall.Stat_t)
	sb, okB := b.Sys().(*syscall.Stat_t)
	return !okA || !okB || sa.Dev == sb.Dev
}

func (s *Sizer) partOf(p string) string {
	rel, err := filepath.Rel(s.dir, p)
	if err != nil {
		return "other"
	}
	for {
		if name, ok := s.paths[rel]; ok {
			return name
		}
		parent := filepath.Dir(rel)
		if parent == rel || parent == "." {
			return "other"
		}
		rel = parent
	}
}

// WriteMetrics writes the sizes in Prometheus text format as the gauge
// cccp_data_bytes{part="..."}.
func (s *Sizer) WriteMetrics(ctx context.Context, w io.Writer) error {
	parts, err := s.Sizes(ctx)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# HELP cccp_data_bytes Size of cccp's data folder, by part.\n# TYPE cccp_data_bytes gauge\n")
	for _, p := range parts {
		fmt.Fprintf(&b, "cccp_data_bytes{part=%q} %d\n", p.Name, p.Bytes)
	}
	_, err = io.WriteString(w, b.String())
	return err
}
