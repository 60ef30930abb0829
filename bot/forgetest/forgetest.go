// Package forgetest is what the recording forge doubles share
// (bot/github/githubtest, bot/gitlab/gitlabtest, bot/gitea/giteatest): an
// httptest server that records every request (Recorder), the JSON and
// pagination helpers of their handlers, a branch:path file store (Files)
// and the issue-comment thread that GitHub and Gitea serve alike
// (IssueComments). Each double embeds these and keeps its own routes and
// its forge's answers.
package forgetest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Call is one request a double received.
type Call struct {
	Method string
	Path   string // escaped, as sent: GitLab project paths keep their %2F
	Query  string
	Body   string
	// Auth is the credential header the forge reads: Authorization on
	// GitHub and Gitea, Private-Token on GitLab.
	Auth string
}

func (c Call) String() string { return c.Method + " " + c.Path }

// Recorder is an httptest server that records each request before the
// forge's routes answer it. Embed it in a double.
type Recorder struct {
	*httptest.Server

	mu    sync.Mutex
	calls []Call
}

// NewRecorder starts a Recorder that records the authHeader credential of
// each request and hands it to routes with Content-Type application/json
// set. It is closed when the test ends.
func NewRecorder(t testing.TB, authHeader string, routes http.Handler) *Recorder {
	rec := &Recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.calls = append(rec.calls, Call{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Body: string(body), Auth: r.Header.Get(authHeader)})
		rec.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		w.Header().Set("Content-Type", "application/json")
		routes.ServeHTTP(w, r)
	}))
	t.Cleanup(rec.Close)
	return rec
}

// Calls returns the requests received so far, in order.
func (rec *Recorder) Calls() []Call {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.calls)
}

// WriteJSON answers code with v as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers code with {"message": message}, the error body of all
// three forges.
func WriteError(w http.ResponseWriter, code int, message string) {
	WriteJSON(w, code, map[string]string{"message": message})
}

// Decode reads the request body as a JSON object; nil when it is not one.
func Decode(r *http.Request) map[string]any {
	var m map[string]any
	_ = json.NewDecoder(r.Body).Decode(&m)
	return m
}

// Str returns m[k] when it is a string, else "".
func Str(m map[string]any, k string) string { v, _ := m[k].(string); return v }

// Paginate returns the items of the page that r asks for (query "page",
// counted from 1; 1 when absent) at size items a page, the page number and
// whether more pages follow. items is never nil, so it encodes as [].
func Paginate[T any](r *http.Request, all []T, size int) (items []T, page int, more bool) {
	page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	lo := min((page-1)*size, len(all))
	hi := min(lo+size, len(all))
	items = all[lo:hi:hi]
	if items == nil {
		items = []T{}
	}
	return items, page, hi < len(all)
}

// Files holds file contents by branch and path. The zero value is empty
// and ready to use.
type Files struct {
	mu    sync.Mutex
	files map[string]string // branch:path -> content
}

// File returns a file's content on a branch.
func (f *Files) File(branch, path string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.files[branch+":"+path]
	return c, ok
}

// PutFile stores a file's content on a branch.
func (f *Files) PutFile(branch, path, content string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.files == nil {
		f.files = map[string]string{}
	}
	f.files[branch+":"+path] = content
}

// Golden compares got with the golden file at path, or rewrites the file
// when update is set (each test package's -update flag).
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
