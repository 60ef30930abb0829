package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNotifyConfig(t *testing.T) {
	const base = "index: {path: /srv/index}\n"
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pwFile, []byte("file-pass-5555\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
		env     map[string]string
		wantErr []string // substrings; none: must load
		check   func(t *testing.T, c *serveConfig)
	}{
		{name: "off by default", content: base,
			check: func(t *testing.T, c *serveConfig) {
				if c.Notify.enabled() || !*c.Notify.Email.OnSuccess || c.Notify.Email.LogLines != 20 {
					t.Errorf("notify = %+v, want off, on_success true, 20 lines", c.Notify)
				}
			}},
		{name: "password from a file, masked", content: base + "notify: {email: {on_success: false}, smtp: {host: smtp.example.com, from: cccp@example.com, username: cccp, password_file: " + pwFile + "}}\n",
			check: func(t *testing.T, c *serveConfig) {
				if c.Notify.SMTP.Password != "file-pass-5555" || *c.Notify.Email.OnSuccess {
					t.Errorf("smtp = %+v", c.Notify.SMTP)
				}
				if !slices.Contains(c.secrets(), "file-pass-5555") {
					t.Error("the SMTP password is not among the secrets to mask")
				}
				if _, err := c.Notify.sender(); err != nil {
					t.Error(err)
				}
			}},
		{name: "the environment wins", content: base + "notify: {smtp: {host: smtp.example.com, from: cccp@example.com, username: cccp, password_file: " + pwFile + "}}\n",
			env: map[string]string{"CCCP_SMTP_PASSWORD": "env-pass-6666"},
			check: func(t *testing.T, c *serveConfig) {
				if c.Notify.SMTP.Password != "env-pass-6666" {
					t.Errorf("password from %q, want the environment's", c.Notify.SMTP.Password)
				}
			}},
		{name: "no password in the file", content: base + "notify: {smtp: {host: h, from: a@b.example, password: in-file-7777}}\n",
			wantErr: []string{"field password not found"}},
		{name: "missing from and a bad tls", content: base + "notify: {smtp: {host: smtp.example.com, tls: ssl}}\n",
			wantErr: []string{"notify.smtp: from is required", `tls must be starttls, opportunistic, tls or none, not "ssl"`}},
		{name: "a username over plain text", content: base + "notify: {smtp: {host: smtp.example.com, from: a@b.example, tls: none, username: u}}\n",
			env:     map[string]string{"CCCP_SMTP_PASSWORD": "env-pass-6666"},
			wantErr: []string{"sends the password in the clear"}},
		{name: "smtp without host", content: base + "notify: {smtp: {from: a@b.example}}\n",
			wantErr: []string{"notify.smtp: host is required"}},
		{name: "a missing password file", content: base + "notify: {smtp: {host: h.example, from: a@b.example, username: u, password_file: /nonexistent/pw}}\n",
			wantErr: []string{"notify.smtp.password_file", "/nonexistent/pw"}},
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
			for _, secret := range []string{"env-pass-6666", "file-pass-5555", "in-file-7777"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
}
