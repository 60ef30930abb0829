package liveindex

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/index"
)

func entry(app string, from string) *index.Entry {
	e := &index.Entry{AppID: app, JobID: "j", GitURL: "https://example.com/" + app, GitBranch: "master", TargetFile: "Dockerfile", DesiredTag: "latest"}
	if from != "" {
		e.DependsOn = []string{from}
	}
	return e
}

// TestReload: entries, graph and the new keys of each reload; two reloads
// never run their loaders at once.
func TestReload(t *testing.T) {
	var gen atomic.Int32
	var inside atomic.Int32
	overlap := false
	l := New(func(ctx context.Context) (*index.Index, error) {
		if inside.Add(1) > 1 {
			overlap = true
		}
		defer inside.Add(-1)
		time.Sleep(5 * time.Millisecond)
		es := []*index.Entry{entry("base", ""), entry("app", "base/j:latest")}
		if gen.Add(1) > 1 {
			es = append(es, entry("new", ""))
		}
		return index.NewIndex("", index.IndexD, es), nil
	})
	if len(l.Entries()) != 0 {
		t.Fatal("entries before the first load")
	}
	added, err := l.Reload(context.Background())
	if err != nil || added != nil {
		t.Fatalf("first reload = %v, %v", added, err)
	}
	if got := l.Children("base/j:latest"); !slices.Equal(got, []string{"app/j:latest"}) {
		t.Errorf("children = %v", got)
	}
	if _, ok := l.Entry("app/j:latest"); !ok || len(l.Values().Entries()) != 2 {
		t.Error("entry lookup or values")
	}
	var wg sync.WaitGroup
	results := make([][]string, 4)
	for i := range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], _ = l.Reload(context.Background()) }()
	}
	wg.Wait()
	if overlap {
		t.Error("two loaders ran at once")
	}
	news := 0
	for _, r := range results {
		news += len(r)
	}
	if news != 1 || fmt.Sprint(l.Keys()) != "[base/j:latest app/j:latest new/j:latest]" {
		t.Errorf("new keys reported %d times, keys %v", news, l.Keys())
	}
}
