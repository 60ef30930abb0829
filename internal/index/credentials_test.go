package index

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestGitURLCredentials: credentials in git-url, a token alone included,
// are refused at lint and dropped at load, and the secret is in no entry
// and no finding.
func TestGitURLCredentials(t *testing.T) {
	const token = "ghp_S3cretT0kenValue"
	tests := []struct {
		name, url string
		refused   bool
		kept      string // the entry's git-url after loading
	}{
		{"token alone", "https://" + token + "@github.com/org/app", true, "https://***@github.com/org/app"},
		{"user and token", "https://x-access-token:" + token + "@github.com/org/app.git", true, "https://x-access-token:***@github.com/org/app.git"},
		{"gitlab oauth2 user alone", "https://oauth2@gitlab.example/g/app", true, "https://***@gitlab.example/g/app"},
		{"git protocol user", "git://" + token + "@h.org/x", true, "git://***@h.org/x"},
		{"ssh password", "ssh://git:" + token + "@h.org/x", true, "ssh://git:***@h.org/x"},
		{"ssh login kept", "ssh://git@h.org/x", false, "ssh://git@h.org/x"},
		{"scp-like login kept", "git@h.org:x/y.git", false, "git@h.org:x/y.git"},
		{"no userinfo", "https://github.com/org/app", false, "https://github.com/org/app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckGitURL(tt.url, false)
			if (err != nil) != tt.refused {
				t.Errorf("CheckGitURL = %v, want refused=%v", err, tt.refused)
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("the error shows the secret: %v", err)
			}
			dir := writeIndex(t, map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", fmt.Sprintf("git-url: %q", tt.url))})
			idx, fs := loadLint(t, dir, LintOptions{})
			if got := idx.Entries[0].GitURL; got != tt.kept {
				t.Errorf("loaded git-url %q, want %q", got, tt.kept)
			}
			var gitURL []Finding
			for _, f := range fs {
				if strings.Contains(f.String(), token) {
					t.Errorf("a finding shows the secret: %s", f)
				}
				if f.Rule == "git-url" {
					gitURL = append(gitURL, f)
				}
			}
			if tt.refused && (len(gitURL) != 1 || gitURL[0].Severity != Error) {
				t.Errorf("findings %v, want one git-url error", fs)
			}
			if !tt.refused && len(gitURL) != 0 {
				t.Errorf("findings %v, want none of git-url", fs)
			}
			// Load alone (without Lint) already refuses and redacts.
			idx, lfs, err := Load(context.Background(), dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.refused && (!HasErrors(lfs) || strings.Contains(idx.Entries[0].GitURL, token)) {
				t.Errorf("Load kept %q with findings %v", idx.Entries[0].GitURL, lfs)
			}
		})
	}
}
