package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/safefs"
)

// maxDockerfile bounds a Dockerfile that cccp reads.
const maxDockerfile = 1 << 20

// pinFrom rewrites the Dockerfile's FROM lines that the pipeline pins
// (spec.Pin: its Parents, else its Resolve) to the pinned digest reference,
// writing the result to out. It returns out, or "" when no line changed,
// and every base the build starts FROM. A FROM of an earlier stage of the
// same Dockerfile is not a base. The Dockerfile is read only as a regular
// file beneath root (the checkout), under maxDockerfile bytes.
func pinFrom(ctx context.Context, spec *backend.BuildSpec, root, dockerfile, out string, log io.Writer) (string, []backend.Base, error) {
	name := filepath.Base(dockerfile)
	src, err := safefs.ReadFile(root, dockerfile, maxDockerfile)
	if err != nil {
		return "", nil, stageErr(ReasonBadPath, fmt.Errorf("read %s: %w", name, err))
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return "", nil, stageErr(ReasonBuildFailed, fmt.Errorf("%s: %w", name, err))
	}
	if err := checkAddURLs(ctx, name, res.AST.Children); err != nil {
		return "", nil, err
	}
	lines := strings.SplitAfter(string(src), "\n")
	changed := false
	stages := map[string]bool{}
	var bases []backend.Base
	for _, node := range res.AST.Children {
		if !strings.EqualFold(node.Value, "from") || node.Next == nil {
			continue
		}
		image := node.Next.Value
		own := stages[strings.ToLower(image)]
		if n := node.Next.Next; n != nil && strings.EqualFold(n.Value, "as") && n.Next != nil {
			stages[strings.ToLower(n.Next.Value)] = true
		}
		if own {
			continue // an earlier stage of this Dockerfile
		}
		pin, ok, err := spec.Pin(ctx, image)
		if err != nil {
			return "", nil, fmt.Errorf("%s:%d: pin FROM %s: %w", name, node.StartLine, image, err)
		}
		i := node.StartLine - 1
		if !ok || i < 0 || i >= len(lines) || !strings.Contains(lines[i], image) {
			bases = append(bases, backend.Base{Image: image})
			continue
		}
		lines[i] = strings.Replace(lines[i], image, pin.DigestRef, 1)
		changed = true
		bases = append(bases, backend.Base{Image: image, Digest: digestOf(pin.DigestRef), Pinned: true})
		fmt.Fprintf(log, "cccp: %s:%d: FROM %s pinned to %s\n", name, node.StartLine, image, pin.DigestRef)
	}
	if !changed {
		return "", bases, nil
	}
	if err := os.WriteFile(out, []byte(strings.Join(lines, "")), 0o644); err != nil {
		return "", nil, fmt.Errorf("write pinned Dockerfile: %w", err)
	}
	return out, bases, nil
}

func digestOf(ref string) string {
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		return ref[i+1:]
	}
	return ""
}

// checkAddURLs refuses an ADD whose source is a URL on this host or its
// networks (loopback, private, link-local or unspecified addresses, or a
// name resolving to one): buildah fetches ADD URLs itself, as root in the
// host's network namespace, so such an ADD would read cccp's own
// listeners or a cloud's metadata service into an image anyone can pull.
// A name that does not resolve is left to the build to fail on.
func checkAddURLs(ctx context.Context, name string, nodes []*parser.Node) error {
	for _, node := range nodes {
		if !strings.EqualFold(node.Value, "add") {
			continue
		}
		var args []string
		for n := node.Next; n != nil; n = n.Next {
			args = append(args, n.Value)
		}
		if len(args) > 0 {
			args = args[:len(args)-1] // the destination
		}
		for _, a := range args {
			u, err := url.Parse(a)
			if err != nil || u.Host == "" || !strings.Contains(a, "://") {
				continue
			}
			if err := hostAllowed(ctx, u.Hostname()); err != nil {
				return stageErr(ReasonForbiddenURL, fmt.Errorf("%s:%d: ADD %s: %w", name, node.StartLine, redact.URL(a), err))
			}
		}
	}
	return nil
}

func hostAllowed(ctx context.Context, host string) error {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%s is this host", host)
	}
	if ip := net.ParseIP(h); ip != nil {
		return ipAllowed(host, ip)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, h)
	if err != nil {
		return nil // unresolvable: the build's own fetch fails
	}
	for _, a := range addrs {
		if err := ipAllowed(host, a.IP); err != nil {
			return err
		}
	}
	return nil
}

func ipAllowed(host string, ip net.IP) error {
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() {
		return fmt.Errorf("%s is on this host or its networks (%s)", host, ip)
	}
	return nil
}
