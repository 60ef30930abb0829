package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// seeded is a fixture with a passed run of acme/base:latest (run 1), a
// failed run of acme/web:latest (run 2) with logs, and nothing for
// acme/api:latest.
func seeded(t *testing.T, mod ...func(*Config)) *fixture {
	t.Helper()
	f := newFixture(t, mod...)
	f.addRun("acme/base:latest", "branch", store.Cause{Kind: "push", Ref: "refs/heads/master", Commit: "feedfacecafe1234"},
		map[types.StageName]store.State{"build": store.Passed, "test": store.Passed, "deliver": store.Passed}, "")
	f.writeLog("1", "build", "STEP 1/2: FROM centos", "build ok")
	r := f.addRun("acme/web:latest", "branch", store.Cause{Kind: "parent", Parent: "acme/base:latest"},
		map[types.StageName]store.State{"build": store.Failed, "deliver": store.Skipped, "test": store.Skipped}, "build: exit status 1")
	lines := []string{"STEP 1/3: FROM acme/base", "STEP 2/3: RUN make"}
	for i := 0; i < 20; i++ {
		lines = append(lines, "compiling module "+string(rune('a'+i)))
	}
	lines = append(lines, "main.c:3: error: expected ';' before '}' token", "make: *** [all] Error 2",
		"Error: building at STEP \"RUN make\": exit status 2")
	f.writeLog(r.ID, "build", lines...)
	return f
}

func TestPages(t *testing.T) {
	f := seeded(t)
	tests := []struct {
		name   string
		path   string
		status int
		want   []string
		not    []string
	}{
		{"dashboard", "/", 200, []string{`href="/projects/acme/base:latest" class="project">acme/base:latest<`, ">acme/web:latest<", ">acme/api:latest<", "never built", "registry.example.org/acme/base:latest", "sha256:abababababab", `href="/runs/2#stage-build" class="badge failed"`}, nil},
		{"dashboard filter", "/?q=WEB", 200, []string{">acme/web:latest<"}, []string{">acme/base:latest<", ">acme/api:latest<"}},
		{"project", "/projects/acme/web:latest", 200, []string{"<h1>acme/web:latest</h1>", `href="/projects/acme/base:latest"`, "parent acme/base:latest rebuilt", `href="/runs/2"`}, nil},
		{"project without tag", "/projects/acme/web", 200, []string{"<h1>acme/web:latest</h1>", `href="/runs/2"`}, nil},
		{"project children", "/projects/acme/base:latest", 200, []string{`href="/projects/acme/web:latest"`, `href="/projects/acme/api:latest"`, "registry.example.org/acme/base:latest", "sha256:abababababab", "push to master at feedfaceca"}, []string{`href="/runs/2"`}},
		{"unknown project", "/projects/acme/nope", 404, []string{"no project acme/nope"}, nil},
		{"unknown tag", "/projects/acme/web:9", 404, []string{"no project acme/web:9"}, nil},
		{"run links its project", "/runs/2", 200, []string{`of <a href="/projects/acme/web:latest">acme/web:latest</a>`}, nil},
		{"run", "/runs/2", 200, []string{"Failed in the build stage", "build: exit status 1", `id="build-L23"`}, nil},
		{"passed run", "/runs/1", 200, []string{"STEP 1/2: FROM centos", `class="badge big passed"`}, []string{"Failed in the"}},
		{"unknown run", "/runs/999", 404, []string{"There is no run 999"}, nil},
		{"bad run id", "/runs/..%2f..", 404, nil, nil},
		{"failures", "/failures", 200, []string{`href="/runs/2"`, `<a href="/projects/acme/web:latest">acme/web:latest</a>`, "build: exit status 1"}, []string{`href="/runs/1"`}},
		{"onboard form", "/onboard", 200, []string{`name="git-url"`, `value="master"`, `value="Dockerfile"`, `value="latest"`}, nil},
		{"log text", "/runs/2/stages/build/log.txt", 200, []string{"make: *** [all] Error 2"}, nil},
		{"log of unknown stage", "/runs/2/stages/nope/log.txt", 404, nil, nil},
		{"log not written", "/runs/2/stages/test/log.txt", 404, nil, nil},
		{"unknown page", "/nowhere", 404, nil, nil},
		{"static css", "/static/style.css", 200, []string{"--fail"}, nil},
		{"sign-in form", "/signin?next=/runs/2", 200, []string{`name="token"`, `value="/runs/2"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.get(tt.path)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d\n%s", rec.Code, tt.status, rec.Body)
			}
			body := rec.Body.String()
			hasAll(t, "body", body, tt.want, tt.not)
		})
	}
}

func TestDashboardFailedFirst(t *testing.T) {
	f := seeded(t)
	body := f.get("/?failed=1").Body.String()
	web, base := strings.Index(body, ">acme/web:latest<"), strings.Index(body, ">acme/base:latest<")
	if web < 0 || base < 0 || web > base {
		t.Errorf("failed acme/web:latest (at %d) not before acme/base:latest (at %d)", web, base)
	}
	body = f.get("/").Body.String()
	if strings.Index(body, ">acme/web:latest<") < strings.Index(body, ">acme/base:latest<") {
		t.Error("without ?failed=1 the index order is not kept")
	}
}

func TestRunPageOpensAtFailure(t *testing.T) {
	f := seeded(t)
	body := f.get("/runs/2").Body.String()
	// Lines 23-25 explain the failure; the page targets the first.
	if !strings.Contains(body, `data-first-line="build-L23"`) {
		t.Errorf("no first-line target build-L23 in\n%s", body)
	}
	for _, n := range []string{"23", "24", "25"} {
		if !strings.Contains(body, `class="line hl" id="build-L`+n+`"`) {
			t.Errorf("line %s not highlighted", n)
		}
	}
	if strings.Contains(body, `class="line hl" id="build-L5"`) {
		t.Error("an ordinary line is highlighted")
	}
}

func TestHostileTextIsEscaped(t *testing.T) {
	f := newFixture(t)
	r := f.addRun("acme/web:latest", "branch", store.Cause{Kind: "manual", Actor: `<img src=x onerror=alert(1)>`},
		map[types.StageName]store.State{"build": store.Failed}, `<script>alert("err")</script>`)
	f.writeLog(r.ID, "build", `<script>alert("log")</script>`, "\x1b[31mred\x1b[0m error: </pre><b>x</b>")
	for _, path := range []string{"/runs/" + r.ID, "/projects/acme/web", "/failures", "/", "/?q=%3Cscript%3E"} {
		t.Run(path, func(t *testing.T) {
			body := f.get(path).Body.String()
			for _, bad := range []string{"<script>alert", "<img src=x", "</pre><b>", "\x1b["} {
				if strings.Contains(body, bad) {
					t.Errorf("raw %q in the page", bad)
				}
			}
		})
	}
	body := f.get("/runs/" + r.ID).Body.String()
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;log&#34;)&lt;/script&gt;") {
		t.Error("the log's <script> line is not shown as text")
	}
}

func TestSecretsAreMasked(t *testing.T) {
	f := newFixture(t)
	r := f.addRun("acme/web:latest", "branch", store.Cause{Kind: "manual"}, map[types.StageName]store.State{"build": store.Failed},
		"push failed: auth "+secret)
	f.writeLog(r.ID, "build", "login with "+secret, "clone https://bot:"+secret+"@github.com/acme/web", "error: denied")
	for _, path := range []string{"/runs/" + r.ID, "/failures", "/runs/" + r.ID + "/stages/build/log.txt",
		"/api/v1/runs/" + r.ID, "/api/v1/runs/" + r.ID + "/stages/build/log", "/projects/acme/web"} {
		t.Run(path, func(t *testing.T) {
			rec := f.get(path)
			if rec.Code != 200 {
				t.Fatalf("status %d", rec.Code)
			}
			if strings.Contains(rec.Body.String(), secret) {
				t.Errorf("secret shown:\n%s", rec.Body)
			}
		})
	}
	if !strings.Contains(f.get("/runs/"+r.ID+"/stages/build/log.txt").Body.String(), "login with ***") {
		t.Error("masked text missing from the download")
	}
}

func TestAPI(t *testing.T) {
	f := seeded(t)
	tests := []struct {
		name   string
		path   string
		status int
		check  func(t *testing.T, body []byte)
	}{
		{"projects", "/api/v1/projects", 200, func(t *testing.T, b []byte) {
			var v struct {
				Projects []apiProject `json:"projects"`
			}
			mustJSON(t, b, &v)
			var names []string
			for _, p := range v.Projects {
				names = append(names, p.Name)
			}
			if !slices.Equal(names, []string{"acme/base:latest", "acme/web:latest", "acme/api:latest"}) {
				t.Errorf("names %v", names)
			}
			if lr := v.Projects[1].LastRun; lr == nil || lr.State != "failed" || lr.URL != "https://cccp.example.org/runs/2" || lr.Project != "acme/web:latest" {
				t.Errorf("last run of acme/web:latest: %+v", lr)
			}
			if p := v.Projects[1]; p.URL != "https://cccp.example.org/projects/acme/web:latest" || p.RunsURL != "https://cccp.example.org/api/v1/projects/acme/web:latest/runs" {
				t.Errorf("links of acme/web:latest: %s %s", p.URL, p.RunsURL)
			}
			if im := v.Projects[0].Images; len(im) != 1 || im[0].Ref != "registry.example.org/acme/base:latest" {
				t.Errorf("images of acme/base:latest: %+v", im)
			}
		}},
		{"project", "/api/v1/projects/acme/web:latest", 200, func(t *testing.T, b []byte) {
			var p apiProject
			mustJSON(t, b, &p)
			if p.Name != "acme/web:latest" || p.Entry == nil || p.Entry.GitBranch != "main" || !slices.Equal(p.Parents, []string{"acme/base:latest"}) ||
				p.LastRun == nil || p.LastRun.ID != "2" {
				t.Errorf("project %+v", p)
			}
		}},
		{"project without tag", "/api/v1/projects/acme/base", 200, func(t *testing.T, b []byte) {
			var p apiProject
			mustJSON(t, b, &p)
			if p.Name != "acme/base:latest" || !slices.Equal(p.Children, []string{"acme/web:latest", "acme/api:latest"}) {
				t.Errorf("project %+v", p)
			}
		}},
		{"unknown project", "/api/v1/projects/acme/nope", 404, nil},
		{"project runs", "/api/v1/projects/acme/web:latest/runs", 200, func(t *testing.T, b []byte) {
			var v struct {
				Runs []apiRun `json:"runs"`
			}
			mustJSON(t, b, &v)
			if len(v.Runs) != 1 || v.Runs[0].ID != "2" || v.Runs[0].Project != "acme/web:latest" ||
				v.Runs[0].Cause.Text != "parent acme/base:latest rebuilt" || v.Runs[0].Cause.Parent != "acme/base:latest" {
				t.Errorf("runs %+v", v.Runs)
			}
		}},
		{"run", "/api/v1/runs/2", 200, func(t *testing.T, b []byte) {
			var r apiRun
			mustJSON(t, b, &r)
			if r.State != "failed" || len(r.Stages) != 3 || r.Stages[0].Error != "build: exit status 1" ||
				r.Stages[0].LogURL != "https://cccp.example.org/api/v1/runs/2/stages/build/log" {
				t.Errorf("run %+v", r)
			}
		}},
		{"unknown run", "/api/v1/runs/77", 404, func(t *testing.T, b []byte) {
			var e apiErr
			mustJSON(t, b, &e)
			if e.Error == "" {
				t.Error("no error message")
			}
		}},
		{"log", "/api/v1/runs/2/stages/build/log", 200, func(t *testing.T, b []byte) {
			if !strings.Contains(string(b), "STEP 2/3: RUN make") {
				t.Errorf("log %s", b)
			}
		}},
		{"log from offset", "/api/v1/runs/1/stages/build/log?from=" + firstLineLen(t, f), 200, func(t *testing.T, b []byte) {
			if strings.Contains(string(b), "STEP 1/2") || !strings.Contains(string(b), "build ok") {
				t.Errorf("log from 10: %q", b)
			}
		}},
		{"log of unknown run", "/api/v1/runs/77/stages/build/log", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.get(tt.path)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.check != nil {
				tt.check(t, rec.Body.Bytes())
			}
		})
	}
}

// firstLineLen is the byte length of run 1's first build log line.
func firstLineLen(t *testing.T, f *fixture) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.logsDir, "1", "build.log"))
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(strings.IndexByte(string(b), '\n') + 1)
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("json: %v\n%s", err, b)
	}
}

func TestActionsNeedAuthAndCSRF(t *testing.T) {
	f := seeded(t, func(c *Config) { c.ReadTokens = []string{readToken} })
	admin, csrf := f.session(adminToken)
	reader, readerCSRF := f.session(readToken)
	form := func(path, csrf string, c *http.Cookie) *http.Request {
		req := httptest.NewRequest("POST", path, strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c != nil {
			req.AddCookie(c)
		}
		return req
	}
	bearer := func(path, token string) *http.Request {
		req := httptest.NewRequest("POST", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return req
	}
	crossSite := form("/runs/2/rerun", csrf, admin)
	crossSite.Header.Set("Sec-Fetch-Site", "cross-site")
	forged := bearer("/api/v1/runs/2/rerun", adminToken)
	forged.Header.Set("Origin", "https://evil.example")
	forged.Header.Set("Sec-Fetch-Site", "cross-site")
	tests := []struct {
		name   string
		req    *http.Request
		status int
		calls  int // actions recorded after this request
	}{
		{"anonymous form", form("/runs/2/rerun", "", nil), 401, 0},
		{"reader session", form("/runs/2/rerun", readerCSRF, reader), 403, 0},
		{"admin without csrf", form("/runs/2/rerun", "", admin), 403, 0},
		{"admin with another session's csrf", form("/runs/2/rerun", readerCSRF, admin), 403, 0},
		{"cross-site post", crossSite, 403, 0},
		{"admin with csrf", form("/runs/2/rerun", csrf, admin), 303, 1},
		{"cancel with csrf", form("/runs/2/cancel", csrf, admin), 303, 2},
		{"api anonymous", bearer("/api/v1/runs/2/rerun", ""), 401, 2},
		{"api wrong token", bearer("/api/v1/runs/2/rerun", "nope-nope"), 401, 2},
		{"api reader", bearer("/api/v1/runs/2/rerun", readToken), 403, 2},
		{"api cross-site even with token", forged, 403, 2},
		{"api admin", bearer("/api/v1/runs/2/rerun", adminToken), 201, 3},
		{"api admin cancel", bearer("/api/v1/runs/2/cancel", adminToken), 200, 4},
		{"api cookie without csrf header", form("/api/v1/runs/2/cancel", csrf, admin), 403, 4},
		{"rerun unknown run", bearer("/api/v1/runs/404/rerun", adminToken), 404, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.req)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if got := len(f.actions.Calls()); got != tt.calls {
				t.Errorf("%d actions recorded, want %d: %v", got, tt.calls, f.actions.Calls())
			}
		})
	}
	want := []string{"rerun 2 by admin", "cancel 2 by admin", "rerun 2 by admin (API token)", "cancel 2 by admin (API token)"}
	if got := f.actions.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

func TestReadAccess(t *testing.T) {
	f := seeded(t, func(c *Config) { c.ReadTokens = []string{readToken} })
	reader, _ := f.session(readToken)
	withCookie := httptest.NewRequest("GET", "/runs/2", nil)
	withCookie.AddCookie(reader)
	withBearer := httptest.NewRequest("GET", "/api/v1/runs/2", nil)
	withBearer.Header.Set("Authorization", "Bearer "+readToken)
	expired := httptest.NewRequest("GET", "/runs/2", nil)
	expired.AddCookie(&http.Cookie{Name: sessionCookie, Value: "reader.1.00.bad"})
	tests := []struct {
		name     string
		req      *http.Request
		status   int
		location string
	}{
		{"page redirects to sign-in", httptest.NewRequest("GET", "/runs/2", nil), 303, "/signin?next=%2Fruns%2F2"},
		{"api refuses", httptest.NewRequest("GET", "/api/v1/runs/2", nil), 401, ""},
		{"log refuses", httptest.NewRequest("GET", "/runs/2/stages/build/log.txt", nil), 303, "/signin?next=%2Fruns%2F2%2Fstages%2Fbuild%2Flog.txt"},
		{"forged cookie", expired, 303, "/signin?next=%2Fruns%2F2"},
		{"session", withCookie, 200, ""},
		{"bearer", withBearer, 200, ""},
		{"sign-in page stays open", httptest.NewRequest("GET", "/signin", nil), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.req)
			if rec.Code != tt.status || rec.Header().Get("Location") != tt.location {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Location"), tt.status, tt.location)
			}
		})
	}
}

func TestSignIn(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, token, next string
		status            int
		location          string
	}{
		{"wrong token", "guess", "/", 401, ""},
		{"admin", adminToken, "/runs/2", 303, "/runs/2"},
		{"open redirect refused", adminToken, "//evil.example/", 303, "/"},
		{"absolute redirect refused", adminToken, "https://evil.example/", 303, "/"},
		// Browsers drop tabs and newlines in URLs and read a backslash as a
		// slash: each of these is another host to them.
		{"tab then slashes refused", adminToken, "/\t/evil.example/x", 303, "/"},
		{"newline then slashes refused", adminToken, "/\n/evil.example/x", 303, "/"},
		{"carriage return refused", adminToken, "/\r/evil.example/x", 303, "/"},
		{"slash backslash refused", adminToken, "/\\evil.example/x", 303, "/"},
		{"backslash later refused", adminToken, "/runs/\\x", 303, "/"},
		{"nul refused", adminToken, "/\x00/evil.example", 303, "/"},
		{"del refused", adminToken, "/\x7f/evil.example", 303, "/"},
		{"scheme-relative after space refused", adminToken, " //evil.example/", 303, "/"},
		{"scheme refused", adminToken, "javascript:alert(1)", 303, "/"},
		{"path with query kept", adminToken, "/runs/2?x=1#y", 303, "/runs/2?x=1#y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/signin", strings.NewReader(url.Values{"token": {tt.token}, "next": {tt.next}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := f.do(req)
			if rec.Code != tt.status || rec.Header().Get("Location") != tt.location {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Location"), tt.status, tt.location)
			}
			cookies := rec.Result().Cookies()
			if tt.status != 303 {
				if len(cookies) != 0 {
					t.Errorf("cookie set on failure: %v", cookies)
				}
				return
			}
			if len(cookies) != 1 {
				t.Fatalf("cookies %v", cookies)
			}
			c := cookies[0]
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, adminToken) {
				t.Errorf("cookie %+v", c)
			}
		})
	}
}

func TestOnboardForm(t *testing.T) {
	f := newFixture(t)
	admin, csrf := f.session(adminToken)
	post := func(v url.Values) *httptest.ResponseRecorder {
		v.Set("csrf", csrf)
		req := httptest.NewRequest("POST", "/onboard", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(admin)
		return f.do(req)
	}
	file := filepath.Join(f.root, "index.d", "acme.yaml")
	valid := url.Values{"app-id": {"acme"}, "job-id": {"db"}, "git-url": {"https://github.com/acme/db"},
		"notify-email": {"dba@acme.example.org"}, "git-branch": {"master"}, "git-path": {"/"}, "target-file": {"Dockerfile"},
		"build-context": {"./"}, "desired-tag": {"latest"}, "depends-on": {"acme/base:latest"}}

	t.Run("errors beside fields", func(t *testing.T) {
		v := url.Values{}
		for k, vs := range valid {
			v[k] = vs
		}
		v.Set("git-url", "ext::sh -c <b>x</b>")
		v.Set("job-id", "Bad Name")
		v.Set("depends-on", "acme/missing:latest")
		rec := post(v)
		if rec.Code != http.StatusUnprocessableEntity {
			t.Fatalf("status %d\n%s", rec.Code, rec.Body)
		}
		body := rec.Body.String()
		for _, key := range []string{"git-url", "job-id", "depends-on"} {
			i := strings.Index(body, `id="field-`+key+`"`)
			j := strings.Index(body[i+1:], `id="field-`)
			if i < 0 || j < 0 || !strings.Contains(body[i:i+1+j], `class="field-error" id="err-`+key+`"`) {
				t.Errorf("no error beside %s", key)
			}
		}
		if strings.Contains(body, "<b>x</b>") {
			t.Error("hostile value not escaped")
		}
		if !strings.Contains(body, `value="ext::sh -c &lt;b&gt;x&lt;/b&gt;"`) {
			t.Error("the typed value is not kept in the form")
		}
		if text, _ := os.ReadFile(file); string(text) != indexText {
			t.Error("the index changed on a refused entry")
		}
		if len(f.queuer.got) != 0 {
			t.Errorf("queued %v", f.queuer.got)
		}
	})
	t.Run("success appends and queues", func(t *testing.T) {
		rec := post(valid)
		if rec.Code != 200 {
			t.Fatalf("status %d\n%s", rec.Code, rec.Body)
		}
		body := rec.Body.String()
		if !strings.Contains(body, `href="/runs/1"`) || !strings.Contains(body, "index.d/acme.yaml") || !strings.Contains(body, "<b>acme/db:latest</b> was added") {
			t.Errorf("outcome not shown:\n%s", body)
		}
		text, _ := os.ReadFile(file)
		if !strings.HasPrefix(string(text), indexText) || !strings.Contains(string(text), "job-id: db") {
			t.Errorf("index file:\n%s", text)
		}
		if !slices.Equal(f.queuer.got, []string{"acme/db:latest by admin"}) {
			t.Errorf("queued %v", f.queuer.got)
		}
		if !slices.Equal(f.projects.Parents("acme/db:latest"), []string{"acme/base:latest"}) {
			t.Errorf("reloaded graph: parents %v", f.projects.Parents("acme/db:latest"))
		}
		// The page of the new project lists the run queued for it.
		if rec := f.get("/projects/acme/db:latest"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `href="/runs/1"`) {
			t.Errorf("new project page: %d\n%s", rec.Code, rec.Body)
		}
	})
	t.Run("anonymous refused", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/onboard", strings.NewReader(valid.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if rec := f.do(req); rec.Code != 401 {
			t.Errorf("status %d", rec.Code)
		}
	})
}

func TestAPIOnboard(t *testing.T) {
	f := newFixture(t)
	post := func(body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/projects", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		return f.do(req)
	}
	rec := post(`{"app-id":"acme","job-id":"db","git-url":"-uhttps://x","notify-email":["a@acme.example.org"]}`)
	if rec.Code != 422 {
		t.Fatalf("invalid: %d %s", rec.Code, rec.Body)
	}
	var e struct {
		Findings []struct{ File, Rule string }
	}
	mustJSON(t, rec.Body.Bytes(), &e)
	if len(e.Findings) == 0 || e.Findings[0].Rule != "git-url" || e.Findings[0].File != "index.d/acme.yaml" {
		t.Errorf("findings %+v", e.Findings)
	}
	if rec := post(`{"app-id":"acme","bogus":1}`); rec.Code != 400 {
		t.Errorf("unknown field: %d", rec.Code)
	}
	rec = post(`{"app-id":"acme","job-id":"db","git-url":"https://github.com/acme/db","notify-email":["a@acme.example.org"]}`)
	if rec.Code != 201 {
		t.Fatalf("valid: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Project, File string
		RunURL        string `json:"run_url"`
	}
	mustJSON(t, rec.Body.Bytes(), &out)
	if out.Project != "acme/db:latest" || out.File != "index.d/acme.yaml" || out.RunURL != "https://cccp.example.org/runs/1" {
		t.Errorf("outcome %+v", out)
	}
}

// TestTagsAreProjects: one app-id/job-id with two desired-tags (built from
// two branches, as centos/centos builds :7 and :6) is two projects, each
// with its own row, page and runs; a URL without a tag names the first
// entry of the name in the index.
func TestTagsAreProjects(t *testing.T) {
	f := seeded(t)
	// acme/web:7, from branch el7, goes before acme/web:latest, so the
	// first entry of acme/web is not the one the :latest default names.
	el7 := `  - id: 4
    app-id: acme
    job-id: web
    git-url: https://github.com/acme/web
    git-branch: el7
    git-path: /
    target-file: Dockerfile
    desired-tag: "7"
    notify-email: ops@acme.example.org
    build-context: ./
    depends-on: acme/base:latest

`
	text := strings.Replace(indexText, "  - id: 2\n", el7+"  - id: 2\n", 1)
	if err := os.WriteFile(filepath.Join(f.root, "index.d", "acme.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f.projects.Set(f.loadIndex())
	r7 := f.addRun("acme/web:7", "branch", store.Cause{Kind: "push", Ref: "refs/heads/el7"},
		map[types.StageName]store.State{"build": store.Passed, "test": store.Passed, "deliver": store.Passed}, "")

	t.Run("dashboard rows", func(t *testing.T) {
		rows := dashboardRowsOf(t, f.get("/").Body.String())
		want := map[string]struct{ has, not string }{
			"acme/web:7":      {`href="/runs/` + r7.ID + `"`, `href="/runs/2"`},
			"acme/web:latest": {`href="/runs/2"`, `href="/runs/` + r7.ID + `"`},
		}
		var names []string
		for _, r := range rows {
			names = append(names, r.name)
			if w, ok := want[r.name]; ok {
				if !strings.Contains(r.html, w.has) || strings.Contains(r.html, w.not) {
					t.Errorf("row %s does not show its own run (%s, not %s):\n%s", r.name, w.has, w.not, r.html)
				}
			}
		}
		if !slices.Equal(names, []string{"acme/base:latest", "acme/web:7", "acme/web:latest", "acme/api:latest"}) {
			t.Errorf("rows %v", names)
		}
		if row := rows[1].html; !strings.Contains(row, "registry.example.org/acme/web:7") || !strings.Contains(row, "(el7)") {
			t.Errorf("acme/web:7 row lacks its image or branch:\n%s", row)
		}
	})
	pages := []struct {
		name, path string
		want, not  []string
	}{
		{"no tag is the first entry", "/projects/acme/web", []string{"<h1>acme/web:7</h1>", `href="/runs/` + r7.ID + `"`, "<code>el7</code>"}, []string{`href="/runs/2"`}},
		{"tag 7", "/projects/acme/web:7", []string{"<h1>acme/web:7</h1>", `href="/runs/` + r7.ID + `"`, "registry.example.org/acme/web:7"}, []string{`href="/runs/2"`}},
		{"tag latest", "/projects/acme/web:latest", []string{"<h1>acme/web:latest</h1>", `href="/runs/2"`, "<code>main</code>"}, []string{`href="/runs/` + r7.ID + `"`}},
		{"parent lists both", "/projects/acme/base:latest", []string{`href="/projects/acme/web:7"`, `href="/projects/acme/web:latest"`}, nil},
	}
	for _, tt := range pages {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.get(tt.path)
			if rec.Code != 200 {
				t.Fatalf("status %d\n%s", rec.Code, rec.Body)
			}
			body := rec.Body.String()
			hasAll(t, "body", body, tt.want, tt.not)
		})
	}
	api := []struct{ path, run string }{
		{"/api/v1/projects/acme/web/runs", r7.ID},
		{"/api/v1/projects/acme/web:7/runs", r7.ID},
		{"/api/v1/projects/acme/web:latest/runs", "2"},
	}
	for _, tt := range api {
		t.Run(tt.path, func(t *testing.T) {
			var v struct {
				Runs []apiRun `json:"runs"`
			}
			rec := f.get(tt.path)
			mustJSON(t, rec.Body.Bytes(), &v)
			if len(v.Runs) != 1 || v.Runs[0].ID != tt.run {
				t.Errorf("runs %+v, want only run %s", v.Runs, tt.run)
			}
		})
	}
}

type renderedRow struct{ name, html string }

// dashboardRowsOf splits the dashboard's table into its rows, each named by
// the text of its project link.
func dashboardRowsOf(t *testing.T, body string) []renderedRow {
	t.Helper()
	var rows []renderedRow
	parts := strings.Split(body, `<tr data-search=`)
	for _, p := range parts[1:] {
		p, _, _ = strings.Cut(p, "</tr>")
		_, rest, ok := strings.Cut(p, `class="project">`)
		if !ok {
			t.Fatalf("a row without a project link:\n%s", p)
		}
		name, _, _ := strings.Cut(rest, "<")
		rows = append(rows, renderedRow{name: name, html: p})
	}
	return rows
}

// A failed stage's reason and a failed check's own lines, as the backend
// reported them, reach the run page and the API.
func TestFailureReasonAndExplainAreShown(t *testing.T) {
	f := newFixture(t)
	r := f.addRun("acme/web:latest", "branch", store.Cause{Kind: "manual"}, map[types.StageName]store.State{"build": store.Passed, "test": store.Failed},
		"the test stage ran longer than its deadline of 30m0s and was stopped")
	if _, err := f.db.UpdateRun(context.Background(), r.ID, func(r *store.Run) error {
		r.Stages[1].Reason = "DeadlineExceeded"
		r.Stages[1].Checks = []store.Check{{Name: types.CheckUserScript, State: store.Failed, Blocking: true,
			Summary: "exit status 3", Explain: []string{"expected 42, got 41"}}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	page := f.get("/runs/" + r.ID).Body.String()
	if !strings.Contains(page, "DeadlineExceeded: the test stage ran longer") {
		t.Errorf("run page lacks the stage's reason:\n%s", page)
	}
	var api apiRun
	if err := json.Unmarshal(f.get("/api/v1/runs/"+r.ID).Body.Bytes(), &api); err != nil {
		t.Fatal(err)
	}
	if st := api.Stages[1]; st.Reason != "DeadlineExceeded" || len(st.Checks) != 1 || !slices.Equal(st.Checks[0].Explain, []string{"expected 42, got 41"}) {
		t.Errorf("API test stage = %+v, want its reason and the check's explain lines", st)
	}
}
