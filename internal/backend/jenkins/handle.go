package jenkins

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cccp-project/cccp/internal/backend"
)

// A handle names a job's build by its path under Jenkins' URL:
//
//	job/<name>/<number>            a build that started
//	job/<name>/queue/<id>          a build still in (or once in) the queue
//
// A folder's job repeats the `job/` step: job/<folder>/job/<name>/12.
//
// StartTest returns the queue form, because Jenkins answers
// buildWithParameters with a queue item, and a queue item becomes a build
// only when an executor takes it, which may be much later. The queue form
// stays valid: Wait, Log and Cancel ask the queue item for its build
// number, and once Jenkins has forgotten the item (it keeps left items for
// five minutes, Queue.leftItems) they find the build whose queueId is the
// item's id among the job's recent builds. A restarted cccp therefore
// reattaches from either form.
type handle struct {
	job    string // job/<name>[/job/<name>...]
	number int    // the build's number; 0 while only the queue item is known
	queue  int64  // the queue item's id; 0 for the build form
}

func (h handle) String() string {
	if h.number > 0 {
		return h.job + "/" + strconv.Itoa(h.number)
	}
	return h.job + "/queue/" + strconv.FormatInt(h.queue, 10)
}

// build is the handle of the started build.
func (h handle) build(n int) handle { return handle{job: h.job, number: n} }

func parseHandle(h backend.Handle) (handle, error) {
	s := string(h)
	parts := strings.Split(s, "/")
	var out handle
	switch {
	case len(parts) >= 4 && parts[len(parts)-2] == "queue":
		id, err := strconv.ParseInt(parts[len(parts)-1], 10, 64)
		if err != nil || id <= 0 {
			return handle{}, fmt.Errorf("jenkins handle %q: bad queue id", s)
		}
		out.queue = id
		parts = parts[:len(parts)-2]
	case len(parts) >= 3:
		n, err := strconv.Atoi(parts[len(parts)-1])
		if err != nil || n <= 0 {
			return handle{}, fmt.Errorf("jenkins handle %q: bad build number", s)
		}
		out.number = n
		parts = parts[:len(parts)-1]
	default:
		return handle{}, fmt.Errorf("jenkins handle %q: want job/<name>/<number> or job/<name>/queue/<id>", s)
	}
	job, err := jobPath(parts)
	if err != nil {
		return handle{}, fmt.Errorf("jenkins handle %q: %w", s, err)
	}
	out.job = job
	return out, nil
}

// jobPath checks `job/<name>` pairs and joins them.
func jobPath(parts []string) (string, error) {
	if len(parts) == 0 || len(parts)%2 != 0 {
		return "", fmt.Errorf("want job/<name> pairs")
	}
	for i := 0; i < len(parts); i += 2 {
		if parts[i] != "job" {
			return "", fmt.Errorf("want job/<name> pairs, not %q", parts[i])
		}
		if err := checkName(parts[i+1]); err != nil {
			return "", err
		}
	}
	return strings.Join(parts, "/"), nil
}

// JobPath turns a job's full name as Jenkins shows it (`name`, or
// `folder/name` for a job in a folder) into its URL path
// (`job/name`, `job/folder/job/name`).
func JobPath(fullName string) (string, error) {
	if fullName == "" {
		return "", fmt.Errorf("empty job name")
	}
	var parts []string
	for _, n := range strings.Split(fullName, "/") {
		if err := checkName(n); err != nil {
			return "", fmt.Errorf("job %q: %w", fullName, err)
		}
		parts = append(parts, "job", n)
	}
	return strings.Join(parts, "/"), nil
}

func checkName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "?#\\\x00") {
		return fmt.Errorf("bad job name %q", n)
	}
	return nil
}
