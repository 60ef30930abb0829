package jenkins_test

import (
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/backendtest"
	"github.com/cccp-project/cccp/internal/backend/jenkins"
	"github.com/cccp-project/cccp/internal/backend/jenkins/jenkinstest"
)

// The Jenkins tester passes the conformance suite's tester part against
// the double. A restarted tester reattaches, also once Jenkins has
// forgotten the queue item.
func TestConformance(t *testing.T) {
	j := jenkinstest.New(t)
	j.Crumbs = true
	j.Queue(jenkinstest.Script{Queue: []string{"waiting", "buildable"}, Result: "UNSTABLE"}, jenkinstest.Script{Steps: 1 << 30})
	tr, _ := newTester(t, j, func(c *jenkins.Config) { c.Poll = 10 * time.Millisecond })
	slow := spec()
	slow.RunID = "43"
	backendtest.RunTester(t, backendtest.TesterConfig{
		Tester:  tr,
		Good:    spec(),
		Slow:    slow,
		Unknown: "job/cccp-test/999",
		Restart: func(t *testing.T) backend.Tester {
			j.ForgetQueue(7)
			fresh, _ := newTester(t, j)
			return fresh
		},
		CanReattach: true,
		Timeout:     time.Minute,
	})
}
