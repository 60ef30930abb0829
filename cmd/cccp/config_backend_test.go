package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend/jenkins"
	"github.com/cccp-project/cccp/internal/backend/jenkins/jenkinstest"
)

func TestTestBackendConfig(t *testing.T) {
	const base = "index: {path: /srv/index}\n"
	tests := []struct {
		name    string
		content string
		env     map[string]string
		wantErr []string // substrings; none: must load
		check   func(t *testing.T, c *serveConfig)
	}{
		{name: "default is local", content: base,
			check: func(t *testing.T, c *serveConfig) {
				if c.Pipeline.Test.Backend != "local" {
					t.Errorf("backend = %q, want local", c.Pipeline.Test.Backend)
				}
			}},
		{name: "an unknown backend", content: base + "pipeline: {test: {backend: tekton}}\n",
			wantErr: []string{`pipeline.test.backend must be "local" or "jenkins", not "tekton"`}},
		{name: "jenkins with nothing set names every missing key", content: base + "pipeline: {test: {backend: jenkins}}\n",
			wantErr: []string{"pipeline.test.jenkins.url is required", "pipeline.test.jenkins.user is required",
				"pipeline.test.jenkins.token (or CCCP_JENKINS_TOKEN) is required", "pipeline.test.jenkins.job: empty job name"}},
		{name: "jenkins from the file and the token from the environment",
			content: base + "pipeline: {test: {backend: jenkins, jenkins: {url: 'https://ci.example.com/jenkins/', user: cccp, token: file-token-1111, job: team/cccp-test}}}\n",
			env:     map[string]string{"CCCP_JENKINS_TOKEN": "env-token-2222"},
			check: func(t *testing.T, c *serveConfig) {
				j := c.Pipeline.Test.Jenkins
				if j.Token != "env-token-2222" || j.Poll != 5*time.Second || j.Job != "team/cccp-test" {
					t.Errorf("jenkins = %+v, want the env token, poll 5s", j)
				}
				if _, err := jenkins.New(c.Pipeline.Test.jenkinsTesterConfig()); err != nil {
					t.Errorf("jenkins.New: %v", err)
				}
				found := false
				for _, s := range c.secrets() {
					found = found || s == "env-token-2222"
				}
				if !found {
					t.Errorf("the Jenkins token is not among the secrets to mask")
				}
			}},
		{name: "a poll that would hammer Jenkins",
			content: base + "pipeline: {test: {backend: jenkins, jenkins: {url: 'https://ci.example.com/', user: cccp, job: cccp-test, poll: 100ms}}}\n",
			env:     map[string]string{"CCCP_JENKINS_TOKEN": "env-token-2222"},
			wantErr: []string{"pipeline.test.jenkins.poll must be at least 1s, not 100ms"}},
		{name: "credentials in the url",
			content: base + "pipeline: {test: {backend: jenkins, jenkins: {url: 'https://cccp:secret-in-url-3333@ci.example.com/', user: cccp, job: cccp-test}}}\n",
			env:     map[string]string{"CCCP_JENKINS_TOKEN": "env-token-2222"},
			wantErr: []string{"pipeline.test.jenkins.url must not carry credentials"}},
		{name: "credentials in a url of the wrong scheme",
			content: base + "pipeline: {test: {backend: jenkins, jenkins: {url: 'ftp://cccp:secret-in-url-3333@ci.example.com/', user: cccp, job: cccp-test}}}\n",
			env:     map[string]string{"CCCP_JENKINS_TOKEN": "env-token-2222"},
			wantErr: []string{"pipeline.test.jenkins.url must be http(s)://host[/path]"}},
		{name: "a missing CA file",
			content: base + "pipeline: {test: {backend: jenkins, jenkins: {url: 'https://ci.example.com/', user: cccp, job: cccp-test, ca_file: /nonexistent/ca.pem}}}\n",
			env:     map[string]string{"CCCP_JENKINS_TOKEN": "env-token-2222"},
			wantErr: []string{"pipeline.test.jenkins.ca_file", "/nonexistent/ca.pem"}},
		{name: "a typo in the block", content: base + "pipeline: {test: {backend: jenkins, jenkins: {ur1: x}}}\n",
			wantErr: []string{"field ur1 not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadServeConfig(writeConfig(t, tt.content), envMap(tt.env))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded; want an error with %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, secret := range []string{"env-token-2222", "secret-in-url-3333", "file-token-1111"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestOpenTestBackend(t *testing.T) {
	j := jenkinstest.New(t)
	good := testStageConfig{Backend: "jenkins", Jenkins: jenkinsConfig{URL: j.URL, User: j.User, Token: j.Token, Job: jenkinstest.Job, Poll: time.Second}}

	if tr, err := openTestBackend(t.Context(), &testStageConfig{Backend: "local"}, slog.New(slog.DiscardHandler)); tr != nil || err != nil {
		t.Errorf("local = %v, %v; want nil, nil", tr, err)
	}
	tr, err := openTestBackend(t.Context(), &good, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := tr.(interface{ Name() string }); !ok || n.Name() != "jenkins" {
		t.Errorf("backend %T is not named jenkins", tr)
	}
	bad := good
	bad.Jenkins.Token = "0000wrong-token-0000"
	_, err = openTestBackend(t.Context(), &bad, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "Unauthorized") || strings.Contains(err.Error(), "0000wrong-token-0000") {
		t.Errorf("err = %v, want Unauthorized without the token", err)
	}
}
