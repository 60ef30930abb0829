package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cccp-project/cccp/internal/types"
)

func openTest(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cccp.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func reopen(t *testing.T, db *DB, path string) *DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	return db2
}

func ids(runs []*Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

func TestStateDone(t *testing.T) {
	for _, tt := range []struct {
		s    State
		done bool
	}{{Queued, false}, {Running, false}, {Passed, true}, {Failed, true}, {Cancelled, true}, {Skipped, true}, {"", false}} {
		t.Run(string(tt.s), func(t *testing.T) {
			if got := tt.s.Done(); got != tt.done {
				t.Errorf("%q.Done() = %v, want %v", tt.s, got, tt.done)
			}
		})
	}
}

func TestCreateRunRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	in := &Run{
		Project: "org/app", Kind: "branch",
		Cause:  Cause{Kind: "push", Commit: "abc", Ref: "refs/heads/main", Forge: "github", Repo: "org/app", DeliveryID: "d1"},
		GitURL: "https://github.com/org/app", Branch: "main", Commit: "abc",
		Stages:  []Stage{{Name: "build", State: Passed, Digest: "sha256:1", Checks: []Check{{Name: "lint", State: Passed, Findings: []string{"x"}}}}},
		Images:  []Image{{Ref: "r/org/app:test", Digest: "sha256:1"}},
		Backend: map[string]string{"build": "handle"},
	}
	if err := db.CreateRun(ctx, in); err != nil {
		t.Fatal(err)
	}
	if in.ID != "1" || in.State != Queued || in.Created.IsZero() {
		t.Fatalf("after CreateRun: ID %q State %q Created %v", in.ID, in.State, in.Created)
	}
	second := &Run{Project: "org/app"}
	if err := db.CreateRun(ctx, second); err != nil {
		t.Fatal(err)
	}
	if second.ID != "2" {
		t.Errorf("second ID = %q, want 2", second.ID)
	}
	db = reopen(t, db, path)
	got, err := db.Run(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("Run(1) =\n%+v\nwant\n%+v", got, in)
	}
	third := &Run{Project: "org/app"}
	if err := db.CreateRun(ctx, third); err != nil || third.ID != "3" {
		t.Errorf("after reopen: ID %q err %v, want 3", third.ID, err)
	}
	for _, id := range []string{"99", "0", "x", "", "-1"} {
		t.Run("missing "+id, func(t *testing.T) {
			if _, err := db.Run(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Run(%q) err = %v, want ErrNotFound", id, err)
			}
		})
	}
}

func TestCreateRunRejects(t *testing.T) {
	db, _ := openTest(t)
	for name, r := range map[string]*Run{
		"empty project": {},
		"nul project":   {Project: "a\x00b"},
		"nul kind":      {Project: "a", Kind: "x\x00"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := db.CreateRun(context.Background(), r); err == nil {
				t.Error("CreateRun succeeded")
			}
		})
	}
}

func TestUpdateRun(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	r := &Run{Project: "org/app", Kind: "branch"}
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	t.Run("applies", func(t *testing.T) {
		got, err := db.UpdateRun(ctx, r.ID, func(r *Run) error {
			r.State = Running
			r.Stages = append(r.Stages, Stage{Name: "build", State: Running})
			return nil
		})
		if err != nil || got.State != Running {
			t.Fatalf("UpdateRun = %+v, %v", got, err)
		}
		stored, _ := db.Run(ctx, r.ID)
		if stored.State != Running || len(stored.Stages) != 1 {
			t.Errorf("stored %+v", stored)
		}
	})
	t.Run("fn error writes nothing", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := db.UpdateRun(ctx, r.ID, func(r *Run) error { r.State = Failed; return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		if stored, _ := db.Run(ctx, r.ID); stored.State != Running {
			t.Errorf("state %q written despite error", stored.State)
		}
	})
	t.Run("identity fixed", func(t *testing.T) {
		for name, fn := range map[string]func(*Run){
			"id": func(r *Run) { r.ID = "7" }, "project": func(r *Run) { r.Project = "x/y" }, "kind": func(r *Run) { r.Kind = "pr" },
		} {
			if _, err := db.UpdateRun(ctx, r.ID, func(r *Run) error { fn(r); return nil }); err == nil {
				t.Errorf("changing %s accepted", name)
			}
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := db.UpdateRun(ctx, "42", func(*Run) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestRunsFilter(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	// IDs 1..9, round-robin over projects sharing a prefix.
	projects := []string{"org/app", "org/app-infra", "org/ap"}
	states := []State{Passed, Failed, Running}
	for i := range 9 {
		r := &Run{Project: projects[i%3], State: states[i/3], Kind: "branch"}
		if err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		f    RunFilter
		want []string
	}{
		{"all newest first", RunFilter{}, []string{"9", "8", "7", "6", "5", "4", "3", "2", "1"}},
		{"project exact", RunFilter{Project: "org/app"}, []string{"7", "4", "1"}},
		{"project prefix-free", RunFilter{Project: "org/ap"}, []string{"9", "6", "3"}},
		{"project infra", RunFilter{Project: "org/app-infra"}, []string{"8", "5", "2"}},
		{"unknown project", RunFilter{Project: "org/a"}, nil},
		{"limit", RunFilter{Limit: 2}, []string{"9", "8"}},
		{"project limit", RunFilter{Project: "org/app", Limit: 2}, []string{"7", "4"}},
		{"before", RunFilter{Before: "5"}, []string{"4", "3", "2", "1"}},
		{"before beyond end", RunFilter{Before: "100", Limit: 1}, []string{"9"}},
		{"project before", RunFilter{Project: "org/app", Before: "7"}, []string{"4", "1"}},
		{"project before between", RunFilter{Project: "org/app", Before: "6"}, []string{"4", "1"}},
		{"project before beyond", RunFilter{Project: "org/ap", Before: "100"}, []string{"9", "6", "3"}},
		{"states", RunFilter{States: []State{Failed}}, []string{"6", "5", "4"}},
		{"project states limit", RunFilter{Project: "org/app-infra", States: []State{Passed, Running}, Limit: 1}, []string{"8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.Runs(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("Runs(%+v) = %v, want %v", tt.f, ids(got), tt.want)
			}
			for _, r := range got {
				if tt.f.Project != "" && r.Project != tt.f.Project {
					t.Errorf("run %s of %q", r.ID, r.Project)
				}
			}
		})
	}
}

func TestLatestAndUnfinished(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	mk := func(project, kind string) string {
		r := &Run{Project: project, Kind: types.RunKind(kind)}
		if err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	a1 := mk("org/app", "branch")
	mk("org/app-infra", "branch")
	a3 := mk("org/app", "pr")
	b4 := mk("org/b", "branch")
	a5 := mk("org/app", "branch")
	finish := func(id string) {
		if _, err := db.UpdateRun(ctx, id, func(r *Run) error { r.State = Passed; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	finish(a1)
	finish(b4)
	db = reopen(t, db, path)

	tests := []struct {
		kind string
		want map[string]string
	}{
		{"", map[string]string{"org/app": a5, "org/app-infra": "2", "org/b": b4}},
		{"branch", map[string]string{"org/app": a5, "org/app-infra": "2", "org/b": b4}},
		{"pr", map[string]string{"org/app": a3}},
		{"trial", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run("latest "+tt.kind, func(t *testing.T) {
			got, err := db.LatestRuns(ctx, tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			gotIDs := map[string]string{}
			for p, r := range got {
				gotIDs[p] = r.ID
				if r.Project != p {
					t.Errorf("run %s under %q is of %q", r.ID, p, r.Project)
				}
			}
			if !reflect.DeepEqual(gotIDs, tt.want) {
				t.Errorf("LatestRuns(%q) = %v, want %v", tt.kind, gotIDs, tt.want)
			}
		})
	}
	t.Run("unfinished", func(t *testing.T) {
		got, err := db.UnfinishedRuns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"2", a3, a5}; !slices.Equal(ids(got), want) {
			t.Errorf("UnfinishedRuns = %v, want %v", ids(got), want)
		}
	})
}

func TestBadRecordReportedNotDeleted(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	for range 3 {
		if err := db.CreateRun(ctx, &Run{Project: "org/app"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketV1).Bucket(bucketRuns).Put(seqKey(2), []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, db *DB) {
		got, err := db.Runs(ctx, RunFilter{Project: "org/app"})
		var de *DecodeError
		if !errors.As(err, &de) || de.Key != "2" || !strings.Contains(err.Error(), `"2"`) {
			t.Errorf("Runs err = %v, want a DecodeError naming key 2", err)
		}
		if !slices.Equal(ids(got), []string{"3", "1"}) {
			t.Errorf("Runs = %v, want the good runs [3 1]", ids(got))
		}
		if _, err := db.Run(ctx, "2"); !errors.As(err, &de) {
			t.Errorf("Run(2) err = %v, want DecodeError", err)
		}
		if _, err := db.UnfinishedRuns(ctx); !errors.As(err, &de) {
			t.Errorf("UnfinishedRuns err = %v, want DecodeError", err)
		}
	}
	check(t, db)
	db = reopen(t, db, path)
	check(t, db) // still there, nothing dropped
}

func TestReports(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(key string, next time.Time, payload string) Report {
		t.Helper()
		if err := db.PutReport(ctx, Report{Key: key, Kind: "status", Payload: []byte(payload), NextAttempt: next}); err != nil {
			t.Fatal(err)
		}
		rs, _ := db.DueReports(ctx, next, 0)
		for _, r := range rs {
			if r.Key == key {
				return r
			}
		}
		t.Fatalf("report %s not due at its NextAttempt", key)
		return Report{}
	}
	a1 := put("github:o/r:sha:cccp/a", t0, "v1")
	put("github:o/r:sha:cccp/b", t0.Add(-time.Minute), "b")
	put("github:o/r:sha:cccp/c", t0.Add(time.Hour), "c")

	t.Run("due order and limit", func(t *testing.T) {
		got, err := db.DueReports(ctx, t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range got {
			keys = append(keys, r.Key)
		}
		if want := []string{"github:o/r:sha:cccp/b", "github:o/r:sha:cccp/a"}; !slices.Equal(keys, want) {
			t.Errorf("due = %v, want %v", keys, want)
		}
		if got, _ := db.DueReports(ctx, t0, 1); len(got) != 1 {
			t.Errorf("limit 1 gave %d", len(got))
		}
	})
	t.Run("replace then stale delete is ignored", func(t *testing.T) {
		a2 := put("github:o/r:sha:cccp/a", t0, "v2")
		if !a2.Updated.After(a1.Updated) {
			t.Fatalf("Updated did not grow: %v then %v", a1.Updated, a2.Updated)
		}
		if err := db.DeleteReport(ctx, a1.Key, a1.Updated); err != nil {
			t.Fatal(err)
		}
		got, _ := db.DueReports(ctx, t0, 0)
		found := false
		for _, r := range got {
			if r.Key == a1.Key {
				found = string(r.Payload) == "v2"
			}
		}
		if !found {
			t.Error("newer report v2 was deleted by a stale DeleteReport")
		}
		if err := db.RetryReport(ctx, a2.Key, t0.Add(time.Minute), "HTTP 502"); err != nil {
			t.Fatal(err)
		}
		got, _ = db.DueReports(ctx, t0.Add(time.Minute), 0)
		var r Report
		for _, x := range got {
			if x.Key == a2.Key {
				r = x
			}
		}
		if r.Attempts != 1 || r.LastError != "HTTP 502" || !r.NextAttempt.Equal(t0.Add(time.Minute)) {
			t.Errorf("after retry: %+v", r)
		}
		if err := db.DeleteReport(ctx, a2.Key, a2.Updated); err != nil {
			t.Fatal(err)
		}
		got, _ = db.DueReports(ctx, t0.Add(time.Hour*2), 0)
		for _, x := range got {
			if x.Key == a2.Key {
				t.Error("report still there after DeleteReport with its Updated")
			}
		}
	})
	t.Run("retry missing", func(t *testing.T) {
		if err := db.RetryReport(ctx, "nope", t0, "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestMeta(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	if _, err := db.GetMeta(ctx, "ok-to-test", "o/r#1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing ns: err = %v", err)
	}
	if err := db.PutMeta(ctx, "ok-to-test", "o/r#1", []byte("sha1")); err != nil {
		t.Fatal(err)
	}
	if err := db.PutMeta(ctx, "comment", "o/r#1", []byte("42")); err != nil {
		t.Fatal(err)
	}
	if err := db.PutMeta(ctx, "empty", "k", nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ns, key, want string
		err           error
	}{
		{"ok-to-test", "o/r#1", "sha1", nil},
		{"comment", "o/r#1", "42", nil},
		{"empty", "k", "", nil},
		{"ok-to-test", "o/r#2", "", ErrNotFound},
		{"comment", "", "", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.ns+"/"+tt.key, func(t *testing.T) {
			got, err := db.GetMeta(ctx, tt.ns, tt.key)
			if !errors.Is(err, tt.err) || string(got) != tt.want {
				t.Errorf("GetMeta = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
	if err := db.DeleteMeta(ctx, "ok-to-test", "o/r#1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetMeta(ctx, "ok-to-test", "o/r#1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := db.DeleteMeta(ctx, "nope", "x"); err != nil {
		t.Errorf("delete missing: %v", err)
	}
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	version := func() int {
		var v int
		bdb.View(func(tx *bolt.Tx) error { v, err = schemaVersion(tx); return err })
		return v
	}
	var applied []int
	n := len(migrations)
	step := func(n int, fail bool) migration {
		return migration{n, fmt.Sprint("step ", n), func(tx *bolt.Tx) error {
			if fail {
				tx.CreateBucket([]byte("half-done"))
				return errors.New("broken")
			}
			applied = append(applied, n)
			return nil
		}}
	}
	tests := []struct {
		name        string
		list        []migration
		wantErr     bool
		wantVersion int
		wantApplied []int
	}{
		{"real list from scratch", migrations, false, n, nil},
		{"idempotent", migrations, false, n, nil},
		{"next step", append(slices.Clone(migrations), step(n+1, false), step(n+2, false)), false, n + 2, []int{n + 1, n + 2}},
		{"failing step rolls back", append(slices.Clone(migrations), step(n+1, false), step(n+2, false), step(n+3, false), step(n+4, true)), true, n + 2, []int{n + 3}},
		{"gap in list", append(slices.Clone(migrations), step(n+1, false), step(n+2, false), step(n+4, false)), true, n + 2, nil},
		{"newer database refused", migrations, true, n + 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applied = nil
			_, _, err := migrate(bdb, tt.list)
			if (err != nil) != tt.wantErr {
				t.Fatalf("migrate err = %v, wantErr %v", err, tt.wantErr)
			}
			if v := version(); v != tt.wantVersion {
				t.Errorf("schema = %d, want %d", v, tt.wantVersion)
			}
			if !slices.Equal(applied, tt.wantApplied) {
				t.Errorf("applied %v, want %v", applied, tt.wantApplied)
			}
			bdb.View(func(tx *bolt.Tx) error {
				if tx.Bucket([]byte("half-done")) != nil {
					t.Error("failed migration left a bucket behind")
				}
				if tx.Bucket(bucketV1).Bucket(bucketRuns) == nil {
					t.Error("v1/runs missing")
				}
				return nil
			})
		})
	}
	bdb.Close()
	if _, err := Open(path, Options{Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a database newer than this cccp: err = %v, want refusal", err)
	}
}
