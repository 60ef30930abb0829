// Package jenkins runs cccp's test stage as a build of a Jenkins job,
// through Jenkins' remote access API (no Jenkins client library is used).
//
// The job is cccp's own (deploy/jenkins/Jenkinsfile): it checks out the
// entry's repository at the run's commit, runs `cccp test` against the
// image by digest on an agent with podman, and archives results.json (the
// format of internal/backend/testreport), which WaitTest reads back, so the
// checks table is the same whichever backend ran.
//
// Calls, in order:
//
//	GET  crumbIssuer/api/json                       once; 404 means CSRF protection is off
//	POST job/<name>/buildWithParameters             201, Location: .../queue/item/<id>/
//	GET  queue/item/<id>/api/json                   until executable.number, or cancelled
//	GET  job/<name>/api/json?tree=builds[...]       only when the queue item was forgotten
//	GET  job/<name>/<n>/logText/progressiveText?start=N   X-Text-Size, X-More-Data
//	GET  job/<name>/<n>/api/json?tree=...           until building is false
//	GET  job/<name>/<n>/artifact/results.json
//	POST job/<name>/<n>/stop, POST queue/cancelItem?id=<id>   on Cancel
//
// Jenkins has no push API, so following a build is polling: one request
// per Config.Poll for each of Wait and Log at steady state. Requests that
// fail because Jenkins is away (connection refused, 502/503/504, a reset)
// are retried with backoff for up to Config.Outage.
package jenkins

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/testreport"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/textcut"
)

// Name is the backend's name as configured and stored with its handles.
const Name = "jenkins"

// ResultsArtifact is the artifact the job archives (deploy/jenkins/Jenkinsfile).
const ResultsArtifact = "results.json"

// The job's parameters (deploy/jenkins/Jenkinsfile declares the same).
const (
	ParamImage        = "IMAGE"         // the image by digest
	ParamEntry        = "ENTRY"         // the entry's key, app-id/job-id:desired-tag
	ParamTestScript   = "TEST_SCRIPT"   // overrides cccp.yaml's test-script; empty: cccp.yaml decides
	ParamRunID        = "RUN_ID"        // cccp's run
	ParamSourceURL    = "SOURCE_URL"    // the repository, never with credentials
	ParamSourceCommit = "SOURCE_COMMIT" // the exact commit
	ParamGitPath      = "GIT_PATH"      // the entry's git-path
	ParamTargetFile   = "TARGET_FILE"   // the entry's target-file (the Dockerfile)
)

// Config is a Jenkins tester's configuration.
type Config struct {
	// URL is Jenkins' root URL, https://jenkins.example.com/ (a context
	// path such as /jenkins/ is kept). Never with credentials.
	URL string
	// User and Token are a Jenkins user and one of its API tokens (basic
	// authentication; the token never enters a URL, an error or a log).
	User, Token string
	// Job is the job's full name: `name`, or `folder/name`.
	Job string
	// Poll is how often a queued item, a running build's state and its log
	// are asked for; default 5s.
	Poll time.Duration
	// RequestTimeout bounds one request; default 30s.
	RequestTimeout time.Duration
	// Outage is how long requests are retried while Jenkins is away
	// (restarting, behind a failing proxy); default 10m.
	Outage time.Duration
	// Backoff is the first retry's delay, doubled per retry up to 30s;
	// default 1s.
	Backoff time.Duration
	// CAFile is a PEM bundle of CAs to trust for Jenkins' certificate, in
	// addition to the system's; empty for the system's only.
	CAFile string
	// Transport overrides the HTTP transport (tests); CAFile is then
	// ignored.
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// Tester runs the test stage as a Jenkins build. It is safe for concurrent
// use.
type Tester struct {
	c    *client
	job  string // job/<name>...
	poll time.Duration
	log  *slog.Logger

	mu      sync.Mutex
	started map[string]int // queue handle -> build number, once known
	// resolving are the queue handles being followed to their build, one
	// follower each however many callers wait (WaitTest and Log at once):
	// every caller sees every reason Jenkins gave for the wait.
	resolving map[string]*resolution
}

// resolution is one queue handle being followed to its build number.
type resolution struct {
	done chan struct{} // closed when n or err is set
	n    int
	err  error

	mu   sync.Mutex
	whys []string // Jenkins' reasons for the wait, in order
}

func (r *resolution) note(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.whys) == 0 || r.whys[len(r.whys)-1] != why {
		r.whys = append(r.whys, why)
	}
}

func (r *resolution) reasons(from int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.whys[min(from, len(r.whys)):])
}

var (
	_ backend.Tester = (*Tester)(nil)
	_ backend.Named  = (*Tester)(nil)
)

// New checks cfg and returns a Tester. It does not contact Jenkins.
func New(cfg Config) (*Tester, error) {
	base, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		return nil, errors.New("jenkins: url is required")
	case err != nil:
		return nil, fmt.Errorf("jenkins: url: %w", err)
	case base.Scheme != "http" && base.Scheme != "https" || base.Host == "":
		return nil, fmt.Errorf("jenkins: url %q: want http(s)://host[/path]", redact.URL(cfg.URL))
	case base.User != nil:
		return nil, fmt.Errorf("jenkins: url %q: no credentials in the URL; give user and token", redact.URL(cfg.URL))
	case base.RawQuery != "" || base.Fragment != "":
		return nil, fmt.Errorf("jenkins: url %q: no query or fragment", redact.URL(cfg.URL))
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	if cfg.User == "" {
		return nil, errors.New("jenkins: user is required")
	}
	if cfg.Token == "" {
		return nil, errors.New("jenkins: token is required")
	}
	job, err := JobPath(cfg.Job)
	if err != nil {
		return nil, fmt.Errorf("jenkins: %w", err)
	}
	rt := cfg.Transport
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.CAFile != "" {
			pool, err := loadCAs(cfg.CAFile)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		rt = tr
	}
	// Jenkins binds a crumb to the web session it was issued in, so the
	// session cookie must come back with the POST.
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tester{
		c: &client{
			base: base, user: cfg.User, token: cfg.Token,
			http: &http.Client{
				Transport: rt, Jar: jar,
				// buildWithParameters answers 201 with a Location to read, and
				// /stop answers with a redirect to the build page: neither is
				// to be followed.
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			},
			mask:       redact.NewMasker(cfg.Token),
			log:        log,
			timeout:    orDefault(cfg.RequestTimeout, 30*time.Second),
			backoff:    orDefault(cfg.Backoff, time.Second),
			maxBackoff: 30 * time.Second,
			outage:     orDefault(cfg.Outage, 10*time.Minute),
		},
		job:       job,
		poll:      orDefault(cfg.Poll, 5*time.Second),
		log:       log,
		started:   map[string]int{},
		resolving: map[string]*resolution{},
	}
	return t, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("jenkins: ca file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("jenkins: ca file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// Name is "jenkins".
func (t *Tester) Name() string { return Name }

// params are the parameters StartTest sends, which the job must declare.
var params = []string{ParamImage, ParamEntry, ParamTestScript, ParamRunID, ParamSourceURL, ParamSourceCommit, ParamGitPath, ParamTargetFile}

// Check asks Jenkins whether the configured user can see the job and the
// job takes cccp's parameters, so that a wrong URL, token or job shows at
// start and not at the first test.
func (t *Tester) Check(ctx context.Context) error {
	var job struct {
		Property []struct {
			ParameterDefinitions []struct {
				Name string `json:"name"`
			} `json:"parameterDefinitions"`
		} `json:"property"`
	}
	q := url.Values{"tree": {"property[parameterDefinitions[name]]"}}
	if err := t.c.getJSON(ctx, t.job+"/api/json", q, &job); err != nil {
		return t.explain("read job "+t.job, err)
	}
	declared := map[string]bool{}
	for _, p := range job.Property {
		for _, d := range p.ParameterDefinitions {
			declared[d.Name] = true
		}
	}
	var missing []string
	for _, p := range params {
		if !declared[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("jenkins: job %s does not declare the parameters %s; load deploy/jenkins/config.xml, or run the Pipeline-from-SCM job once (deploy/jenkins/README.md)",
			t.job, strings.Join(missing, ", "))
	}
	return nil
}

// StartTest queues a build of the job with the spec as parameters and
// returns the queue item's handle (job/<name>/queue/<id>).
func (t *Tester) StartTest(ctx context.Context, spec backend.TestSpec) (backend.Handle, error) {
	if !strings.Contains(spec.Image, "@sha256:") {
		return "", fmt.Errorf("jenkins: test %q: the image must be named by digest", spec.Image)
	}
	if spec.Entry == nil {
		return "", errors.New("jenkins: test: no entry")
	}
	form := url.Values{
		ParamImage:        {spec.Image},
		ParamEntry:        {spec.Entry.Key()},
		ParamTestScript:   {""},
		ParamRunID:        {spec.RunID},
		ParamSourceURL:    {spec.Src.GitURL},
		ParamSourceCommit: {spec.Src.Commit},
		ParamGitPath:      {spec.Entry.GitPath},
		ParamTargetFile:   {spec.Entry.TargetFile},
	}
	r, err := t.c.do(ctx, request{method: http.MethodPost, path: t.job + "/buildWithParameters", form: form})
	if err != nil {
		return "", t.explain("queue a build of "+t.job, err)
	}
	if r.status != http.StatusCreated && r.status != http.StatusSeeOther {
		return "", fmt.Errorf("jenkins: queue a build of %s: answered %d, want 201 with a queue item", t.job, r.status)
	}
	id, err := queueID(r.header.Get("Location"))
	if err != nil {
		return "", fmt.Errorf("jenkins: queue a build of %s: %w", t.job, err)
	}
	h := handle{job: t.job, queue: id}
	t.log.Info("jenkins: queued", "handle", h.String(), "run", spec.RunID, "entry", spec.Entry.Key())
	return backend.Handle(h.String()), nil
}

// queueID reads the id from a Location such as
// https://jenkins.example.com/queue/item/7/.
func queueID(loc string) (int64, error) {
	u, err := url.Parse(loc)
	if err != nil || loc == "" {
		return 0, fmt.Errorf("no queue item in Location %q", loc)
	}
	p := strings.TrimSuffix(u.Path, "/")
	dir, last := path.Split(p)
	id, err := strconv.ParseInt(last, 10, 64)
	if err != nil || id <= 0 || !strings.HasSuffix(dir, "/queue/item/") {
		return 0, fmt.Errorf("no queue item in Location %q", loc)
	}
	return id, nil
}

// explain turns the answers a Jenkins administrator would recognise into
// errors that say what to fix.
func (t *Tester) explain(doing string, err error) error {
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusUnauthorized:
			return &backend.StageError{Reason: "Unauthorized", Message: fmt.Sprintf(
				"Jenkins refused user %q's API token (401) while trying to %s; check the token (CCCP_JENKINS_TOKEN)", t.c.user, doing)}
		case http.StatusForbidden:
			return &backend.StageError{Reason: "Forbidden", Message: fmt.Sprintf(
				"Jenkins denied user %q (403) while trying to %s; it needs Job/Build, Job/Read and Job/Cancel on the job", t.c.user, doing)}
		case http.StatusNotFound:
			return &backend.StageError{Reason: "NotFound", Message: fmt.Sprintf(
				"Jenkins has no %s (404) while trying to %s; is the job loaded (deploy/jenkins/README.md) and may user %q see it?", se.URL, doing, t.c.user)}
		case http.StatusBadRequest:
			return &backend.StageError{Reason: "BadRequest", Message: fmt.Sprintf(
				"Jenkins refused to %s (400: %s); the job must declare the parameters of deploy/jenkins/Jenkinsfile", doing, se.Text)}
		}
	}
	return fmt.Errorf("jenkins: %s: %w", doing, err)
}

// queueItem is what cccp reads of /queue/item/<id>/api/json
// (hudson.model.Queue.Item and its LeftItem).
type queueItem struct {
	Class      string `json:"_class"`
	ID         int64  `json:"id"`
	Why        string `json:"why"`
	Cancelled  bool   `json:"cancelled"`
	Executable *struct {
		Number int    `json:"number"`
		URL    string `json:"url"`
	} `json:"executable"`
}

// errQueueGone is a queue item that Jenkins has forgotten.
var errQueueGone = errors.New("queue item gone")

// resolve returns h's build number, waiting while the item is queued.
// Each reason Jenkins gives for the wait is written to log (if set), as
// it comes. Callers of one handle share one follower of the queue item, so
// each sees every reason, whichever asked Jenkins.
func (t *Tester) resolve(ctx context.Context, h handle, log io.Writer) (int, error) {
	if h.number > 0 {
		return h.number, nil
	}
	key := h.String()
	for {
		t.mu.Lock()
		if n, ok := t.started[key]; ok {
			t.mu.Unlock()
			return n, nil
		}
		res, ok := t.resolving[key]
		if !ok {
			res = &resolution{done: make(chan struct{})}
			t.resolving[key] = res
			go t.follow(ctx, key, h, res)
		}
		t.mu.Unlock()
		shown := 0
		show := func() {
			for _, why := range res.reasons(shown) {
				shown++
				if log != nil {
					fmt.Fprintf(log, "jenkins: waiting in the queue: %s\n", why)
				}
			}
		}
		tick := time.NewTicker(min(t.poll, time.Second))
	wait:
		for {
			show()
			select {
			case <-res.done:
				break wait
			case <-ctx.Done():
				tick.Stop()
				return 0, ctx.Err()
			case <-tick.C:
			}
		}
		tick.Stop()
		show()
		if res.err != nil && ctx.Err() == nil && errors.Is(res.err, context.Canceled) {
			continue // the caller whose context followed the item left; follow it again
		}
		if res.err != nil {
			return 0, res.err
		}
		if log != nil {
			fmt.Fprintf(log, "jenkins: started %s\n", h.build(res.n))
		}
		return res.n, nil
	}
}

// follow asks Jenkins about h's queue item until it has a build number,
// was cancelled or ctx ends, and records the outcome in res.
func (t *Tester) follow(ctx context.Context, key string, h handle, res *resolution) {
	n, err := t.followQueue(ctx, h, res)
	t.mu.Lock()
	delete(t.resolving, key)
	if err == nil {
		if len(t.started) > 4096 { // a long-lived cccp: forget old ones, they resolve again
			clear(t.started)
		}
		t.started[key] = n
	}
	t.mu.Unlock()
	res.n, res.err = n, err
	close(res.done)
}

func (t *Tester) followQueue(ctx context.Context, h handle, res *resolution) (int, error) {
	for {
		n, why, err := t.queueState(ctx, h)
		switch {
		case errors.Is(err, errQueueGone):
			n, err = t.findByQueueID(ctx, h)
			if err != nil {
				return 0, err
			}
		case err != nil:
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
		res.note(why)
		if err := sleep(ctx, t.poll); err != nil {
			return 0, err
		}
	}
}

// queueState asks the queue item once: its build number when it left the
// queue for an executor, else why it waits. A cancelled item is a
// *backend.StageError.
func (t *Tester) queueState(ctx context.Context, h handle) (int, string, error) {
	var qi queueItem
	err := t.c.getJSON(ctx, "queue/item/"+strconv.FormatInt(h.queue, 10)+"/api/json", nil, &qi)
	switch {
	case isStatus(err, http.StatusNotFound):
		return 0, "", errQueueGone
	case err != nil:
		return 0, "", t.explain("follow queue item "+strconv.FormatInt(h.queue, 10), err)
	case qi.Cancelled:
		return 0, "", &backend.StageError{Reason: "Cancelled", Message: fmt.Sprintf(
			"the Jenkins queue item %d of %s was cancelled before it started", h.queue, h.job)}
	case qi.Executable != nil && qi.Executable.Number > 0:
		return qi.Executable.Number, "", nil
	}
	why := qi.Why
	if why == "" {
		why = "(Jenkins gives no reason)"
	}
	return 0, textcut.Bytes(redact.StripANSI(why), 500), nil
}

// findByQueueID finds the build that queue item h became, among the job's
// last 100 builds (Run.getQueueId).
func (t *Tester) findByQueueID(ctx context.Context, h handle) (int, error) {
	var job struct {
		Builds []struct {
			Number  int   `json:"number"`
			QueueID int64 `json:"queueId"`
		} `json:"builds"`
	}
	q := url.Values{"tree": {"builds[number,queueId]{0,100}"}}
	if err := t.c.getJSON(ctx, h.job+"/api/json", q, &job); err != nil {
		return 0, t.explain("find the build of queue item "+strconv.FormatInt(h.queue, 10), err)
	}
	for _, b := range job.Builds {
		if b.QueueID == h.queue && b.Number > 0 {
			return b.Number, nil
		}
	}
	return 0, fmt.Errorf("jenkins: %s: %w (the queue item is gone and no recent build of %s came from it)", h, backend.ErrLost, h.job)
}

// build is what cccp reads of a build's /api/json (hudson.model.Run).
type build struct {
	Number   int    `json:"number"`
	Building bool   `json:"building"`
	Result   string `json:"result"`
	URL      string `json:"url"`
	QueueID  int64  `json:"queueId"`
}

// WaitTest waits for the build and reads back its results.json. SUCCESS
// and UNSTABLE (the job marks a run with failed checks unstable) return
// the checks; FAILURE, ABORTED and NOT_BUILT are *backend.StageError.
func (t *Tester) WaitTest(ctx context.Context, bh backend.Handle) (backend.TestResult, error) {
	h, err := parseHandle(bh)
	if err != nil {
		return backend.TestResult{}, err
	}
	n, err := t.resolve(ctx, h, nil)
	if err != nil {
		return backend.TestResult{}, err
	}
	bp := h.build(n).String()
	var b build
	for {
		err := t.c.getJSON(ctx, bp+"/api/json", url.Values{"tree": {"number,building,result,url,queueId"}}, &b)
		if isStatus(err, http.StatusNotFound) {
			return backend.TestResult{}, fmt.Errorf("jenkins: %s: %w (the build was deleted)", bp, backend.ErrLost)
		}
		if err != nil {
			return backend.TestResult{}, t.explain("follow "+bp, err)
		}
		if !b.Building && b.Result != "" {
			break
		}
		if err := sleep(ctx, t.poll); err != nil {
			return backend.TestResult{}, err
		}
	}
	switch b.Result {
	case "SUCCESS", "UNSTABLE":
		return t.results(ctx, bp, b.Result)
	case "FAILURE":
		return backend.TestResult{}, &backend.StageError{Reason: "JenkinsFailure", Message: fmt.Sprintf(
			"Jenkins build %s failed before cccp's checks could report; see its log", bp)}
	case "ABORTED":
		return backend.TestResult{}, &backend.StageError{Reason: "Aborted", Message: fmt.Sprintf("Jenkins build %s was aborted", bp)}
	case "NOT_BUILT":
		return backend.TestResult{}, &backend.StageError{Reason: "NotBuilt", Message: fmt.Sprintf(
			"Jenkins did not build %s (NOT_BUILT)", bp)}
	default:
		return backend.TestResult{}, &backend.StageError{Reason: "UnknownResult", Message: fmt.Sprintf(
			"Jenkins build %s ended with result %q", bp, textcut.Bytes(b.Result, 40))}
	}
}

// results reads the build's archived results.json.
func (t *Tester) results(ctx context.Context, bp, result string) (backend.TestResult, error) {
	r, err := t.c.do(ctx, request{method: http.MethodGet, path: bp + "/artifact/" + ResultsArtifact, limit: testreport.MaxSize})
	if isStatus(err, http.StatusNotFound) {
		return backend.TestResult{}, &backend.StageError{Reason: "NoResults", Message: fmt.Sprintf(
			"Jenkins build %s ended %s but archived no %s; is the job deploy/jenkins/Jenkinsfile?", bp, result, ResultsArtifact)}
	}
	if err != nil {
		return backend.TestResult{}, t.explain("read the results of "+bp, err)
	}
	rep, err := testreport.Read(strings.NewReader(string(r.body)))
	if err != nil {
		return backend.TestResult{}, &backend.StageError{Reason: "BadResults", Message: fmt.Sprintf(
			"Jenkins build %s archived a %s cccp cannot read: %v", bp, ResultsArtifact, err)}
	}
	return backend.TestResult{Checks: rep.CheckResults()}, nil
}

// Log copies the build's console text to w from offset, following it until
// the build ends or ctx is done, and returns the offset reached.
//
// The offset is Jenkins' own position in the console file (X-Text-Size),
// which counts the hidden console annotations Jenkins strips from the
// text; it is not the number of bytes written to w. A caller that resumes
// must store the offset Log returns. While the build is queued, Log writes
// Jenkins' reasons for the wait ("jenkins: waiting in the queue: ...") to w;
// those lines are not counted in the offset either.
func (t *Tester) Log(ctx context.Context, bh backend.Handle, offset int64, w io.Writer) (int64, error) {
	h, err := parseHandle(bh)
	if err != nil {
		return offset, err
	}
	n, err := t.resolve(ctx, h, w)
	if err != nil {
		var se *backend.StageError
		if errors.As(err, &se) {
			return offset, nil // a cancelled queue item has no log; WaitTest reports it
		}
		return offset, err
	}
	bp := h.build(n).String()
	for {
		r, err := t.c.do(ctx, request{method: http.MethodGet, path: bp + "/logText/progressiveText",
			query: url.Values{"start": {strconv.FormatInt(offset, 10)}}, limit: maxChunk})
		if isStatus(err, http.StatusNotFound) {
			return offset, fmt.Errorf("jenkins: log of %s: %w", bp, backend.ErrLost)
		}
		if err != nil {
			return offset, t.explain("read the log of "+bp, err)
		}
		size, err := strconv.ParseInt(r.header.Get("X-Text-Size"), 10, 64)
		if err != nil || size < 0 {
			return offset, fmt.Errorf("jenkins: log of %s: bad X-Text-Size %q", bp, r.header.Get("X-Text-Size"))
		}
		if size < offset {
			// LargeText starts again from 0 when start is past the end.
			fmt.Fprintf(w, "jenkins: the console of %s is shorter than before (%d < %d bytes); it is shown again from its start\n", bp, size, offset)
		}
		if _, err := w.Write(r.body); err != nil {
			return offset, fmt.Errorf("jenkins: log of %s: %w", bp, err)
		}
		offset = size
		if r.header.Get("X-More-Data") != "true" {
			return offset, nil
		}
		if err := sleep(ctx, t.poll); err != nil {
			return offset, err
		}
	}
}

// cancelQueued takes h's item out of the queue while it waits. It returns
// done when nothing more is to be stopped (the item was cancelled, or is
// unknown), else the number of the build the item became.
func (t *Tester) cancelQueued(ctx context.Context, h handle) (int, bool, error) {
	id := strconv.FormatInt(h.queue, 10)
	for attempt := 0; ; attempt++ {
		num, _, err := t.queueState(ctx, h)
		var se *backend.StageError
		switch {
		case errors.Is(err, errQueueGone):
			num, err = t.findByQueueID(ctx, h)
			if errors.Is(err, backend.ErrLost) {
				return 0, true, nil
			}
			if err != nil {
				return 0, false, err
			}
			return num, false, nil
		case errors.As(err, &se) && se.Reason == "Cancelled":
			return 0, true, nil
		case err != nil:
			return 0, false, err
		case num > 0:
			return num, false, nil
		}
		_, err = t.c.do(ctx, request{method: http.MethodPost, path: "queue/cancelItem", query: url.Values{"id": {id}}})
		switch {
		case err == nil, isStatus(err, http.StatusNotFound):
			return 0, true, nil
		case isStatus(err, http.StatusInternalServerError) && attempt == 0:
			// Jenkins cannot cancel an item that just left the queue: look again.
			continue
		default:
			return 0, false, t.explain("cancel queue item "+id, err)
		}
	}
}

// Cancel takes a queued item out of the queue, or stops its build. Work
// that ended, or that Jenkins no longer knows, is not an error.
func (t *Tester) Cancel(ctx context.Context, bh backend.Handle) error {
	h, err := parseHandle(bh)
	if err != nil {
		return err
	}
	n := h.number
	if n == 0 {
		t.mu.Lock()
		n = t.started[h.String()]
		t.mu.Unlock()
	}
	if n == 0 {
		num, done, err := t.cancelQueued(ctx, h)
		if err != nil || done {
			return err
		}
		n = num
	}
	bp := h.build(n).String()
	_, err = t.c.do(ctx, request{method: http.MethodPost, path: bp + "/stop"})
	if err != nil && !isStatus(err, http.StatusNotFound) {
		return t.explain("stop "+bp, err)
	}
	t.log.Info("jenkins: stopped", "build", bp)
	return nil
}
