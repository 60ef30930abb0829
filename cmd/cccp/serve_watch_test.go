package main

import (
	"strings"
	"testing"
	"time"
)

func TestPolledRepositories(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config func(*serveConfig)
		url    string
		want   bool
	}{
		{"no forge: everything", func(*serveConfig) {}, "https://github.com/org/app.git", true},
		{"github with webhooks", func(c *serveConfig) { c.GitHub.WebhookSecret = "s" }, "https://github.com/org/app.git", false},
		{"github ssh form", func(c *serveConfig) { c.GitHub.WebhookSecret = "s" }, "git@github.com:org/app.git", false},
		{"github token only sends no webhooks", func(c *serveConfig) { c.GitHub.Token = "t" }, "https://github.com/org/app.git", true},
		{"other host", func(c *serveConfig) { c.GitHub.WebhookSecret = "s" }, "https://git.example.org/app.git", true},
		{"enterprise api url", func(c *serveConfig) {
			c.GitHub.WebhookSecret, c.GitHub.BaseURL = "s", "https://api.ghe.example/"
		}, "https://ghe.example/org/app", false},
		{"gitea", func(c *serveConfig) { c.Gitea.WebhookSecret, c.Gitea.BaseURL = "s", "https://Gitea.Example:3000/" }, "https://gitea.example:3000/a/b", false},
		{"explicit list", func(c *serveConfig) { c.Pipeline.Poll.Repos = []string{"https://git.example.org/"} }, "https://git.example.org/x.git", true},
		{"explicit list, not in it", func(c *serveConfig) { c.Pipeline.Poll.Repos = []string{"https://git.example.org/"} }, "https://other.example/x.git", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &serveConfig{}
			tc.config(c)
			if got := c.polled(tc.url, c.webhookHosts()); got != tc.want {
				t.Errorf("polled(%q) = %v, want %v (hooked %v)", tc.url, got, tc.want, c.webhookHosts())
			}
		})
	}
}

func TestValidateWatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  func(*serveConfig)
		wantErr string
	}{
		{"off", func(*serveConfig) {}, ""},
		{"on", func(c *serveConfig) {
			c.Pipeline.Poll.Interval, c.Pipeline.BaseImages.Interval = time.Minute, time.Hour
		}, ""},
		{"poll too often", func(c *serveConfig) { c.Pipeline.Poll.Interval = time.Second }, "pipeline.poll.interval"},
		{"base images too often", func(c *serveConfig) { c.Pipeline.BaseImages.Interval = time.Second }, "pipeline.base_images.interval"},
		{"empty prefix", func(c *serveConfig) { c.Pipeline.Poll.Repos = []string{""} }, "pipeline.poll.repos[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &serveConfig{}
			tc.config(c)
			err := c.validateWatch()
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("validateWatch() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}
