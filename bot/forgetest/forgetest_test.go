package forgetest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func TestPaginate(t *testing.T) {
	all := []int{1, 2, 3, 4, 5}
	tests := []struct {
		name     string
		query    string
		size     int
		want     string
		wantPage int
		more     bool
	}{
		{name: "no page is page 1", query: "", size: 2, want: "[1,2]", wantPage: 1, more: true},
		{name: "page 0 is page 1", query: "page=0", size: 2, want: "[1,2]", wantPage: 1, more: true},
		{name: "middle", query: "page=2", size: 2, want: "[3,4]", wantPage: 2, more: true},
		{name: "last partial", query: "page=3", size: 2, want: "[5]", wantPage: 3},
		{name: "last full", query: "page=1", size: 5, want: "[1,2,3,4,5]", wantPage: 1},
		{name: "beyond the end is empty, not null", query: "page=9", size: 2, want: "[]", wantPage: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/x?"+tt.query, nil)
			items, page, more := Paginate(r, all, tt.size)
			got, _ := json.Marshal(items)
			if string(got) != tt.want || page != tt.wantPage || more != tt.more {
				t.Errorf("Paginate(%q, %d) = %s, %d, %v; want %s, %d, %v", tt.query, tt.size, got, page, more, tt.want, tt.wantPage, tt.more)
			}
		})
	}
	if items, _, _ := Paginate[int](httptest.NewRequest(http.MethodGet, "/", nil), nil, 3); items == nil {
		t.Error("Paginate(nil) = nil, want an empty slice")
	}
}

func TestRecorder(t *testing.T) {
	var seen string
	rec := NewRecorder(t, "Private-Token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = string(b)
		WriteError(w, http.StatusTeapot, "short and stout")
	}))
	req, _ := http.NewRequest(http.MethodPost, rec.URL+"/api/v4/projects/a%2Fb/x?q=1", strings.NewReader(`{"k":"v"}`))
	req.Header.Set("Private-Token", "tok")
	req.Header.Set("Authorization", "not this one")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("Content-Type") != "application/json" || strings.TrimSpace(string(body)) != `{"message":"short and stout"}` {
		t.Errorf("answer %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if seen != `{"k":"v"}` {
		t.Errorf("routes read body %q, want it intact after recording", seen)
	}
	want := Call{Method: "POST", Path: "/api/v4/projects/a%2Fb/x", Query: "q=1", Body: `{"k":"v"}`, Auth: "tok"}
	if calls := rec.Calls(); len(calls) != 1 || calls[0] != want {
		t.Errorf("Calls = %+v, want [%+v]", calls, want)
	}
}

func TestIssueComments(t *testing.T) {
	c := &IssueComments{PageSize: 2, SizeParam: "limit", Bot: "bot", IDBase: 700, NotFound: "nope"}
	mux := http.NewServeMux()
	const p = "/api/v1/repos/{owner}/{repo}"
	c.Mount(mux, p)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(method, path, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	c.AddComment(3, "alice", "one")
	c.AddComment(3, "bob", "two")
	c.AddComment(4, "carol", "elsewhere")
	resp, body := do(http.MethodPost, "/api/v1/repos/o/r/issues/3/comments", `{"body":"three"}`)
	var created Comment
	if err := json.Unmarshal([]byte(body), &created); err != nil || resp.StatusCode != http.StatusCreated || created.User.Login != "bot" || created.ID != 704 {
		t.Fatalf("create = %d %s (%v)", resp.StatusCode, body, err)
	}

	t.Run("first page links the next", func(t *testing.T) {
		resp, body := do(http.MethodGet, "/api/v1/repos/o/r/issues/3/comments", "")
		wantLink := `<` + srv.URL + `/api/v1/repos/o/r/issues/3/comments?page=2&limit=2>; rel="next"`
		if link := resp.Header.Get("Link"); link != wantLink {
			t.Errorf("Link = %q, want %q", link, wantLink)
		}
		var got []Comment
		_ = json.Unmarshal([]byte(body), &got)
		if len(got) != 2 || got[0].Body != "one" || got[1].User.Login != "bob" {
			t.Errorf("page 1 = %s", body)
		}
	})
	t.Run("last page has no link", func(t *testing.T) {
		resp, body := do(http.MethodGet, "/api/v1/repos/o/r/issues/3/comments?page=2", "")
		if resp.Header.Get("Link") != "" || !strings.Contains(body, `"three"`) {
			t.Errorf("page 2: Link %q, body %s", resp.Header.Get("Link"), body)
		}
	})
	t.Run("edit by ID", func(t *testing.T) {
		resp, _ := do(http.MethodPatch, "/api/v1/repos/o/r/issues/comments/704", `{"body":"3!"}`)
		if got := c.Comments(3); resp.StatusCode != http.StatusOK || len(got) != 3 || got[2].Body != "3!" || got[0].Body != "one" {
			t.Errorf("after edit: %d %+v", resp.StatusCode, got)
		}
	})
	t.Run("edit of an unknown ID", func(t *testing.T) {
		resp, body := do(http.MethodPatch, "/api/v1/repos/o/r/issues/comments/3", `{"body":"x"}`)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"nope"`) {
			t.Errorf("edit of comment 3 = %d %s, want 404 (3 is an issue number, not a comment ID)", resp.StatusCode, body)
		}
	})
	t.Run("issues kept apart", func(t *testing.T) {
		if got := c.Comments(4); len(got) != 1 || got[0].Body != "elsewhere" {
			t.Errorf("issue 4 = %+v", got)
		}
	})
}

func TestFiles(t *testing.T) {
	var f Files
	if _, ok := f.File("main", "a"); ok {
		t.Error("zero Files has a file")
	}
	f.PutFile("main", "a", "x")
	f.PutFile("dev", "a", "y")
	if got, ok := f.File("main", "a"); !ok || got != "x" {
		t.Errorf("main:a = %q, %v", got, ok)
	}
	if got, _ := f.File("dev", "a"); got != "y" {
		t.Errorf("dev:a = %q", got)
	}
}

// failTB records failures instead of failing the test.
type failTB struct {
	testing.TB
	failed bool
}

func (f *failTB) Helper()               {}
func (f *failTB) Errorf(string, ...any) { f.failed = true }
func (f *failTB) Fatalf(string, ...any) { f.failed = true }
func (f *failTB) Fatal(...any)          { f.failed = true }

func TestGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "golden", "x.golden")
	tests := []struct {
		name     string
		got      string
		update   bool
		wantFail bool
	}{
		{name: "missing file fails", got: "a\n", wantFail: true},
		{name: "update writes", got: "a\n", update: true},
		{name: "same passes", got: "a\n"},
		{name: "different fails", got: "b\n", wantFail: true},
	}
	for _, tt := range tests { // in order: each step sees the file the last one left
		t.Run(tt.name, func(t *testing.T) {
			f := &failTB{TB: t}
			Golden(f, path, []byte(tt.got), tt.update)
			if f.failed != tt.wantFail {
				t.Errorf("failed = %v, want %v", f.failed, tt.wantFail)
			}
		})
	}
}
