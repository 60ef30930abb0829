// Package jenkinstest is a Jenkins double for the tests of
// internal/backend/jenkins and of whatever drives it (the pipeline, the
// conformance suite): one parameterised job on a real HTTP server that
// answers with the responses recorded in testdata/jenkins (see NOTES.md
// there for where each comes from), and records every call.
//
// Only the identity fields of a recorded answer are rewritten (queue item
// id, build number, URLs under the double's address, result, building);
// everything else is served as recorded. Time does not pass by the clock:
// a queue item moves on each time it is asked for, a build each time its
// state or its log is asked for, following the Script it was queued with.
package jenkinstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed testdata/jenkins
var files embed.FS

// recordedBase is the Jenkins URL the recorded answers carry.
const recordedBase = "http://jenkins.example.com:8080/"

// Job is the job the double serves unless Server.Job says otherwise.
const Job = "cccp-test"

// Script is what one queued build does.
type Script struct {
	// Queue names the queue states the item passes through, one per time
	// it is asked for: "waiting" (quiet period), "blocked", "buildable"
	// (waiting for an executor). Then it starts, unless Cancel.
	Queue  []string
	Cancel bool
	// Steps is how many times the build is asked for (state or log)
	// before it ends; its console is revealed in that many pieces.
	// Default 3.
	Steps int
	// Result is the build's result; default SUCCESS.
	Result string
	// Results is the results.json artifact; nil serves the recorded one,
	// NoResults none (404).
	Results   []byte
	NoResults bool
	// OnStep is called, in its own goroutine, when the build reaches a
	// step (1..Steps).
	OnStep func(step int)
}

// Call is one request the double received.
type Call struct {
	Method string
	Path   string
	Query  url.Values
	Form   url.Values
	Crumb  string // the Jenkins-Crumb header
	User   string // the basic-auth user
	AuthOK bool   // user and token were the right ones
}

func (c Call) String() string {
	s := c.Method + " " + c.Path
	if len(c.Query) > 0 {
		s += "?" + c.Query.Encode()
	}
	return s
}

// Server is the double. Set its fields before the first request.
type Server struct {
	URL         string // with a trailing slash
	User, Token string
	// Crumbs turns CSRF protection on: POSTs need the crumb from
	// /crumbIssuer/api/json, in the session it was issued in.
	Crumbs bool
	Job    string
	// Unparameterized serves the job as Jenkins does before a declarative
	// pipeline first ran: no parameters, buildWithParameters refused.
	Unparameterized bool

	t    testing.TB
	addr string

	mu       sync.Mutex
	srv      *http.Server
	scripts  []Script
	calls    []Call
	items    map[int64]*item
	builds   map[int]*build
	nextID   int64
	nextNum  int
	session  string
	crumb    string
	loading  int // 503 answers still to give after a restart
	console  []byte
	recorded map[string]*http.Response
}

type item struct {
	id        int64
	script    Script
	polls     int
	cancelled bool
	forgotten bool
	number    int
	form      url.Values
}

type build struct {
	number  int
	queueID int64
	script  Script
	step    int
	result  string // set when it ends
	console []byte // raw, with annotations
}

// New starts a double on a loopback port; it stops with the test.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		User: "cccp", Token: "11d2c3b4a5968778695a4b3c2d1e0f9e8d", Job: Job, t: t,
		items: map[int64]*item{}, builds: map[int]*build{}, nextID: 7, nextNum: 12,
		recorded: map[string]*http.Response{},
	}
	raw, err := files.ReadFile("testdata/jenkins/console-raw.log")
	if err != nil {
		t.Fatal(err)
	}
	s.console = raw
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.URL = "http://" + s.addr + "/"
	s.serve(ln)
	t.Cleanup(func() {
		s.mu.Lock()
		srv := s.srv
		s.mu.Unlock()
		srv.Close()
	})
	return s
}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Queue adds scripts for the next builds queued, in order. A build queued
// with no script left runs the default Script.
func (s *Server) Queue(sc ...Script) {
	s.mu.Lock()
	s.scripts = append(s.scripts, sc...)
	s.mu.Unlock()
}

// Calls returns every call so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// ForgetQueue drops a queue item, as Jenkins does five minutes after it
// left the queue.
func (s *Server) ForgetQueue(id int64) {
	s.mu.Lock()
	if it := s.items[id]; it != nil {
		it.forgotten = true
	}
	s.mu.Unlock()
}

// Restart takes Jenkins away at once (the listener and every connection
// close: requests are refused) and brings it back on the same address
// after down, answering 503 "getting ready to work" to the next loading
// requests.
func (s *Server) Restart(down time.Duration, loading int) {
	s.Down()
	time.Sleep(down)
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Errorf("jenkinstest: listen again on %s: %v", s.addr, err)
		return
	}
	s.mu.Lock()
	s.loading = loading
	s.mu.Unlock()
	s.serve(ln)
}

// Down takes Jenkins away for good: the listener and every connection
// close.
func (s *Server) Down() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	srv.Close()
}

// RotateCrumb forgets the session and crumb Jenkins issued, as a restart
// does: the next POST with the old crumb is refused with 403.
func (s *Server) RotateCrumb() {
	s.mu.Lock()
	s.session, s.crumb = randomHex(12), randomHex(32)
	s.mu.Unlock()
}

// Console is the text a client should have shown for a build that ran to
// its end: the recorded console without its annotations.
func (s *Server) Console() string { return string(strip(s.console)) }

// annotation is Jenkins' hidden console note (hudson.console.ConsoleNote):
// ESC[8mha:<base64>ESC[0m.
var annotation = regexp.MustCompile("\x1b\\[8mha:[A-Za-z0-9+/=]*\x1b\\[0m")

func strip(b []byte) []byte { return annotation.ReplaceAll(b, nil) }

var (
	reQueueItem = regexp.MustCompile(`^/queue/item/(\d+)/api/json$`)
	reBuild     = regexp.MustCompile(`^/job/([^/]+)/(\d+)/(api/json|logText/progressiveText|artifact/results\.json|stop)$`)
	reJob       = regexp.MustCompile(`^/job/([^/]+)/(buildWithParameters|api/json)$`)
)

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	user, pass, hasAuth := r.BasicAuth()
	c := Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Crumb: r.Header.Get("Jenkins-Crumb"),
		User: user, AuthOK: hasAuth && user == s.User && pass == s.Token}
	if r.Method == http.MethodPost {
		c.Form = r.PostForm
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)

	if s.loading > 0 {
		s.loading--
		s.reply(w, "loading-503.http", nil)
		return
	}
	if !c.AuthOK {
		s.reply(w, "token-invalid-401.http", nil)
		return
	}
	if r.URL.Path == "/crumbIssuer/api/json" && r.Method == http.MethodGet {
		if !s.Crumbs {
			s.reply(w, "crumbIssuer-off.http", nil)
			return
		}
		s.session = randomHex(12)
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID.4f2b9c1e", Value: s.session, Path: "/", HttpOnly: true})
		s.crumb = randomHex(32)
		s.replyJSON(w, "crumbIssuer-on.http", map[string]any{"crumb": s.crumb})
		return
	}
	if r.Method == http.MethodPost && s.Crumbs {
		ck, err := r.Cookie("JSESSIONID.4f2b9c1e")
		if s.crumb == "" || c.Crumb != s.crumb || err != nil || ck.Value != s.session {
			s.reply(w, "crumb-invalid-403.http", nil)
			return
		}
	}
	switch p := r.URL.Path; {
	case p == "/queue/cancelItem" && r.Method == http.MethodPost:
		id, _ := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
		it := s.items[id]
		if it == nil || it.forgotten {
			s.notFound(w, p)
			return
		}
		if it.number > 0 || it.cancelled {
			// Queue.doCancelItem: a left item cannot be cancelled.
			s.reply(w, "cancelItem-left-500.http", map[string]string{"id 7": "id " + strconv.FormatInt(id, 10)})
			return
		}
		it.cancelled = true
		s.reply(w, "cancelItem-204.http", nil)
	case reQueueItem.MatchString(p) && r.Method == http.MethodGet:
		id, _ := strconv.ParseInt(reQueueItem.FindStringSubmatch(p)[1], 10, 64)
		s.queueItem(w, id, p)
	case reJob.MatchString(p):
		m := reJob.FindStringSubmatch(p)
		if m[1] != s.Job {
			s.notFound(w, p)
			return
		}
		if m[2] == "buildWithParameters" && r.Method == http.MethodPost {
			if s.Unparameterized {
				w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, "%s is not parameterized\n", s.Job)
				return
			}
			s.enqueue(w, r.PostForm)
			return
		}
		if m[2] == "api/json" && r.Method == http.MethodGet {
			s.jobBuilds(w)
			return
		}
		s.notFound(w, p)
	case reBuild.MatchString(p):
		m := reBuild.FindStringSubmatch(p)
		n, _ := strconv.Atoi(m[2])
		b := s.builds[n]
		if m[1] != s.Job || b == nil {
			s.notFound(w, p)
			return
		}
		switch {
		case m[3] == "api/json" && r.Method == http.MethodGet:
			s.advance(b)
			s.buildState(w, b)
		case m[3] == "logText/progressiveText" && r.Method == http.MethodGet:
			s.advance(b)
			s.progressive(w, r, b)
		case m[3] == "artifact/results.json" && r.Method == http.MethodGet:
			s.artifact(w, b, p)
		case m[3] == "stop" && r.Method == http.MethodPost:
			if b.result == "" {
				b.result = "ABORTED"
				b.console = append(b.console, "Aborted by cccp\nFinished: ABORTED\n"...)
			}
			s.reply(w, "stop-302.http", map[string]string{recordedBase + "job/cccp-test/12/": s.buildURL(n)})
		default:
			s.notFound(w, p)
		}
	default:
		s.notFound(w, p)
	}
}

func (s *Server) enqueue(w http.ResponseWriter, form url.Values) {
	sc := Script{}
	if len(s.scripts) > 0 {
		sc, s.scripts = s.scripts[0], s.scripts[1:]
	}
	if sc.Steps <= 0 {
		sc.Steps = 3
	}
	if sc.Result == "" {
		sc.Result = "SUCCESS"
	}
	id := s.nextID
	s.nextID++
	s.items[id] = &item{id: id, script: sc, form: form}
	s.reply(w, "buildWithParameters-201.http", map[string]string{recordedBase + "queue/item/7/": s.URL + "queue/item/" + strconv.FormatInt(id, 10) + "/"})
}

func (s *Server) queueItem(w http.ResponseWriter, id int64, p string) {
	it := s.items[id]
	if it == nil || it.forgotten {
		s.notFound(w, p)
		return
	}
	set := map[string]any{"id": id, "url": "queue/item/" + strconv.FormatInt(id, 10) + "/"}
	switch {
	case it.cancelled:
		s.replyJSON(w, "queue-cancelled.http", set)
	case it.number > 0:
		set["executable"] = map[string]any{"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "number": it.number, "url": s.buildURL(it.number)}
		s.replyJSON(w, "queue-left.http", set)
	case it.polls < len(it.script.Queue):
		state := it.script.Queue[it.polls]
		it.polls++
		s.replyJSON(w, "queue-"+state+".http", set)
	case it.script.Cancel:
		it.cancelled = true
		s.replyJSON(w, "queue-cancelled.http", set)
	default:
		n := s.nextNum
		s.nextNum++
		it.number = n
		s.builds[n] = &build{number: n, queueID: id, script: it.script}
		set["executable"] = map[string]any{"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "number": n, "url": s.buildURL(n)}
		s.replyJSON(w, "queue-left.http", set)
	}
}

func (s *Server) buildURL(n int) string { return s.URL + "job/" + s.Job + "/" + strconv.Itoa(n) + "/" }

func (s *Server) jobBuilds(w http.ResponseWriter) {
	var bs []any
	for n := s.nextNum - 1; n >= 1; n-- {
		if b := s.builds[n]; b != nil {
			bs = append(bs, map[string]any{"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "number": n, "queueId": b.queueID})
		}
	}
	if bs == nil {
		bs = []any{}
	}
	set := map[string]any{"builds": bs, "name": s.Job, "fullName": s.Job, "displayName": s.Job, "url": s.URL + "job/" + s.Job + "/"}
	if s.Unparameterized {
		set["property"] = []any{}
	}
	s.replyJSON(w, "job.http", set)
}

// advance moves b one step on; at its last step it ends with its result.
func (s *Server) advance(b *build) {
	if b.result != "" {
		return
	}
	b.step++
	// Reveal the console up to the line that matches the step.
	lines := bytes.SplitAfter(s.console, []byte("\n"))
	upto := len(lines) * b.step / b.script.Steps
	b.console = bytes.Join(lines[:upto], nil)
	if b.step >= b.script.Steps {
		b.result = b.script.Result
	}
	if f := b.script.OnStep; f != nil {
		go f(b.step)
	}
}

func (s *Server) buildState(w http.ResponseWriter, b *build) {
	set := map[string]any{"number": b.number, "id": strconv.Itoa(b.number), "queueId": b.queueID, "url": s.buildURL(b.number),
		"displayName": "#" + strconv.Itoa(b.number), "fullDisplayName": s.Job + " #" + strconv.Itoa(b.number)}
	if b.result == "" {
		s.replyJSON(w, "build-running.http", set)
		return
	}
	set["result"] = b.result
	if b.script.NoResults || b.result == "ABORTED" || b.result == "NOT_BUILT" {
		set["artifacts"] = []any{}
	}
	s.replyJSON(w, "build-done.http", set)
}

// progressive answers as LargeText.doProgressText does: the text from
// start (0 when start is past the end), X-Text-Size the position reached
// in the raw file, X-More-Data while the build runs.
func (s *Server) progressive(w http.ResponseWriter, r *http.Request, b *build) {
	start, _ := strconv.ParseInt(r.URL.Query().Get("start"), 10, 64)
	size := int64(len(b.console))
	if start > size || start < 0 {
		start = 0
	}
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Add("X-Text-Size", strconv.FormatInt(size, 10))
	if b.result == "" {
		w.Header().Add("X-More-Data", "true")
	}
	w.WriteHeader(http.StatusOK)
	w.Write(strip(b.console[start:]))
}

func (s *Server) artifact(w http.ResponseWriter, b *build, p string) {
	switch {
	case b.result == "" || b.script.NoResults || b.result == "ABORTED" || b.result == "NOT_BUILT":
		s.notFound(w, p)
	case b.script.Results != nil:
		w.Header().Set("Content-Type", "application/json")
		w.Write(b.script.Results)
	default:
		s.reply(w, "artifact-results.http", nil)
	}
}

func (s *Server) notFound(w http.ResponseWriter, p string) {
	s.reply(w, "job-missing-404.http", map[string]string{"/job/no-such-job/buildWithParameters": p})
}

// load returns a recorded answer.
func (s *Server) load(name string) (*http.Response, []byte) {
	data, err := files.ReadFile("testdata/jenkins/" + name)
	if err != nil {
		s.t.Errorf("jenkinstest: %v", err)
		return &http.Response{StatusCode: 500, Header: http.Header{}}, nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
	if err != nil {
		s.t.Errorf("jenkinstest: %s: %v", name, err)
		return &http.Response{StatusCode: 500, Header: http.Header{}}, nil
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// reply writes a recorded answer with the recorded base URL and the
// replacements rewritten in its headers and body.
func (s *Server) reply(w http.ResponseWriter, name string, repl map[string]string) {
	resp, body := s.load(name)
	s.write(w, resp, body, repl)
}

func (s *Server) write(w http.ResponseWriter, resp *http.Response, body []byte, repl map[string]string) {
	rewrite := func(v string) string {
		for old, nw := range repl {
			v = strings.ReplaceAll(v, old, nw)
		}
		return strings.ReplaceAll(v, recordedBase, s.URL)
	}
	for k, vs := range resp.Header {
		if k == "Content-Length" || k == "Set-Cookie" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, rewrite(v))
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write([]byte(rewrite(string(body))))
}

// replyJSON writes a recorded JSON answer with fields of its top-level
// object set.
func (s *Server) replyJSON(w http.ResponseWriter, name string, set map[string]any) {
	resp, body := s.load(name)
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		s.t.Errorf("jenkinstest: %s: %v", name, err)
		return
	}
	for k, v := range set {
		obj[k] = v
	}
	out, err := json.Marshal(obj)
	if err != nil {
		s.t.Errorf("jenkinstest: %s: %v", name, err)
		return
	}
	s.write(w, resp, out, nil)
}

// Form returns the parameters queue item id was queued with.
func (s *Server) Form(id int64) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.items[id]; it != nil {
		return it.form
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// String describes the double for failure messages.
func (s *Server) String() string { return fmt.Sprintf("jenkinstest at %s", s.URL) }
