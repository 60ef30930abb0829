package index

import (
	"net/url"
	"strings"

	"github.com/cccp-project/cccp/internal/redact"
)

// GitCredentials reports whether a git URL carries credentials: a password
// anywhere, or any userinfo in a URL of another scheme than ssh (where
// "git@" names the login and holds no secret; on https it is a token,
// https://TOKEN@host/...). scp-like "user@host:path" is ssh and has no
// password part: git reads everything before the first ':' as [user@]host.
func GitCredentials(u string) bool {
	if i := strings.Index(u, "://"); i >= 0 {
		p, err := url.Parse(u)
		if err != nil {
			// Unparseable: judge by shape, an '@' before the path.
			rest := u[i+3:]
			if j := strings.IndexAny(rest, "/?#"); j >= 0 {
				rest = rest[:j]
			}
			return strings.Contains(rest, "@")
		}
		if p.User == nil {
			return false
		}
		if _, hasPass := p.User.Password(); hasPass {
			return true
		}
		switch strings.ToLower(p.Scheme) {
		case "ssh", "git+ssh", "ssh+git":
			return false
		}
		return true
	}
	return false
}

// redactGitURL is what the loader keeps of a git-url with credentials: the
// URL with its userinfo replaced by "***", so the secret is in no entry,
// run, page, API answer or log.
func redactGitURL(u string) string { return redact.URL(u) }
