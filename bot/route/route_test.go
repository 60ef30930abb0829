package route

import "testing"

func TestNormalizeRepoURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"https", "https://github.com/org/app", "github.com/org/app"},
		{"git suffix and slash", "https://github.com/org/app.git/", "github.com/org/app"},
		{"host case", "https://GitHub.COM/org/app", "github.com/org/app"},
		{"scp-like", "git@github.com:org/app.git", "github.com/org/app"},
		{"ssh url", "ssh://git@github.com/org/app", "github.com/org/app"},
		{"ssh default port", "ssh://git@github.com:22/org/app.git", "github.com/org/app"},
		{"other port kept", "https://git.example:8443/org/app", "git.example:8443/org/app"},
		{"userinfo dropped", "https://x-access-token:abc@github.com/org/app", "github.com/org/app"},
		{"subgroups", "https://gitlab.com/group/sub/app.git", "gitlab.com/group/sub/app"},
		{"http", "http://gitea.local/org/app", "gitea.local/org/app"},
		{"empty", "", ""},
		{"no path", "https://github.com", ""},
		{"local path", "/srv/git/app", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormalizeRepoURL(tt.in); got != tt.want {
				t.Errorf("NormalizeRepoURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
