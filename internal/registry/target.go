package registry

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// Target is where cccp delivers images: a registry host and an optional
// path prefix, from `--registry HOST[:PORT][/PREFIX]`.
type Target struct {
	Host   string // "registry.example.com", "127.0.0.1:5000", "[::1]:5000"
	Prefix string // "" or "team/images", no leading or trailing slash
}

// ErrBadTarget is wrapped by every ParseTarget error.
var ErrBadTarget = errors.New("invalid registry")

var (
	// pathComponent is distribution's rule for one repository path component.
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	hostLabel     = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$`)
)

// ParseTarget parses HOST[:PORT][/PREFIX]. The host must look like a
// registry to every container tool: contain a dot or a port, or be
// localhost (otherwise "myhost/x" reads as a Docker Hub namespace).
func ParseTarget(s string) (Target, error) {
	bad := func(format string, a ...any) (Target, error) {
		return Target{}, fmt.Errorf("%w %q: %s", ErrBadTarget, s, fmt.Sprintf(format, a...))
	}
	if s == "" {
		return bad("empty; want HOST[:PORT][/PREFIX]")
	}
	if scheme, _, ok := strings.Cut(s, "://"); ok {
		return bad("drop the %s:// scheme; plain HTTP is chosen per registry (loopback, or --insecure-registry)", scheme)
	}
	if strings.ContainsAny(s, " \t\n@") {
		return bad("contains a space or '@'; want HOST[:PORT][/PREFIX]")
	}
	host, prefix, _ := strings.Cut(s, "/")
	prefix = strings.TrimSuffix(prefix, "/")
	if err := checkHost(host); err != nil {
		return bad("%v", err)
	}
	if prefix != "" {
		for c := range strings.SplitSeq(prefix, "/") {
			if !pathComponent.MatchString(c) {
				return bad("prefix part %q must be lower-case letters and digits, separated by '.', '_', '__' or '-'", c)
			}
		}
	}
	return Target{Host: host, Prefix: prefix}, nil
}

func checkHost(host string) error {
	if host == "" {
		return errors.New("no host before the '/'")
	}
	h, port, err := net.SplitHostPort(host)
	hasPort := err == nil
	if !hasPort {
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			return fmt.Errorf("host %q: malformed port", host)
		}
		h = host
	}
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q must be a number from 1 to 65535", port)
		}
	}
	if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
		if strings.Contains(h, ":") && !strings.HasPrefix(host, "[") {
			return fmt.Errorf("IPv6 host %q must be in brackets", h)
		}
		return nil
	}
	for l := range strings.SplitSeq(h, ".") {
		if !hostLabel.MatchString(l) {
			return fmt.Errorf("host %q is not a valid host name", h)
		}
	}
	if !hasPort && !strings.Contains(h, ".") && h != "localhost" {
		return fmt.Errorf("host %q needs a dot or a :PORT (or be localhost); otherwise tools read it as a Docker Hub namespace", h)
	}
	return nil
}

// String returns the target as given to --registry.
func (t Target) String() string {
	if t.Prefix == "" {
		return t.Host
	}
	return t.Host + "/" + t.Prefix
}

// Repo returns the full repository name for repository ("app-id/job-id",
// or "job-id" for the library namespace).
func (t Target) Repo(repository string) string {
	return t.String() + "/" + repository
}

// Ref returns the reference of repository at tag.
func (t Target) Ref(repository, tag string) string {
	return t.Repo(repository) + ":" + tag
}

// DigestRef returns the reference of repository at digest ("sha256:...").
func (t Target) DigestRef(repository, digest string) string {
	return t.Repo(repository) + "@" + digest
}
