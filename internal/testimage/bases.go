package testimage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The bases of deploy/Containerfile, made here because no public registry
// can be reached: a Debian 12 made by debootstrap (what BASE,
// docker.io/library/debian:12, is), and a Go toolchain image (what
// BUILDER, docker.io/library/golang, is) carrying this machine's Go and the
// module cache a package needs, so its build fetches nothing.

// DebianRef is the local name of the Debian 12 base.
const DebianRef = "localhost/cccp-test/debian:12"

const debianLabel = "io.cccp.testimage=debian12-minbase-v1"

// Debian returns DebianRef after making sure the image exists in the local
// container storage: `debootstrap --variant=minbase bookworm` from
// deb.debian.org (about 100 MB, minutes on a cold machine), imported once
// per machine and kept, like Busybox. It skips the test when debootstrap is
// not installed (fails it under RequireEnv; hack/install-deps.sh installs
// it).
func Debian(t testing.TB) string {
	t.Helper()
	Require(t)
	if _, err := exec.LookPath("debootstrap"); err != nil {
		missing(t, "debootstrap is not installed (apt-get install debootstrap)")
	}
	if hasLabel(DebianRef, debianLabel) {
		return DebianRef
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	mirror := os.Getenv("CCCP_TEST_DEBIAN_MIRROR")
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
	}
	if out, err := exec.Command("debootstrap", "--variant=minbase", "bookworm", root, mirror).CombinedOutput(); err != nil {
		t.Fatalf("debootstrap bookworm from %s: %v\n%s", mirror, err, tail(out))
	}
	// What the official image leaves out too: the package lists (apt-get
	// update fetches them) and the downloaded packages.
	for _, d := range []string{"var/lib/apt/lists", "var/cache/apt/archives"} {
		clearDir(t, filepath.Join(root, d))
	}
	importRootfs(t, root, DebianRef, debianLabel,
		"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", `CMD ["bash"]`)
	return DebianRef
}

// GoBuilder returns a Go toolchain image for building the packages pkgs of
// the module at moduleDir: busybox (a shell for RUN), this machine's GOROOT
// at /usr/local/go with `go` on PATH as in the golang image, the machine's
// CA certificates, and GOPATH=/go holding every module pkgs need, copied
// from this machine's module cache (GOFLAGS=-mod=mod is not needed: go.sum
// is the module's).
//
// Unlike a real golang image its build cache is warm: when the image is
// made, pkgs are compiled inside it exactly as deploy/Containerfile's
// builder stage compiles them (see WarmBuild), and the image keeps
// /root/.cache/go-build, so a build from it recompiles only the module's
// own packages that changed since. The cache is the image's, made from this
// work tree by the test; nothing is shared between builds.
//
// Its name carries the Go version and a hash of go.sum, pkgs and the warm
// compile's command line; a change of any of them makes a new image. It
// is made once per machine and kept; older ones are left alone (another
// run may still use them).
func GoBuilder(t testing.TB, moduleDir string, pkgs ...string) string {
	t.Helper()
	Require(t)
	sum, err := os.ReadFile(filepath.Join(moduleDir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	gover := strings.TrimSpace(run(t, moduleDir, nil, "go", "env", "GOVERSION"))
	script := WarmBuild(pkgs...)
	ref := builderRef(sum, gover, script, pkgs)
	const label = "io.cccp.testimage=golang-warm-v2"
	if hasLabel(ref, label) {
		return ref
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "tmp", "etc/ssl/certs", "root", "usr/local", "go"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	CopyBusybox(t, filepath.Join(root, "bin"))
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	goroot := strings.TrimSpace(run(t, moduleDir, nil, "go", "env", "GOROOT"))
	if out, err := exec.Command("cp", "-a", goroot, filepath.Join(root, "usr", "local", "go")).CombinedOutput(); err != nil {
		t.Fatalf("copy GOROOT: %v: %s", err, out)
	}
	if out, err := exec.Command("cp", "-L", "/etc/ssl/certs/ca-certificates.crt", filepath.Join(root, "etc", "ssl", "certs")).CombinedOutput(); err != nil {
		t.Fatalf("copy CA certificates: %v: %s", err, out)
	}
	// The modules: `go list -deps` fetches what pkgs import, here from the
	// machine's own module cache as a file:// proxy (no network).
	cache := strings.TrimSpace(run(t, moduleDir, nil, "go", "env", "GOMODCACHE"))
	env := []string{"GOMODCACHE=" + filepath.Join(root, "go", "pkg", "mod"), "GOPROXY=file://" + filepath.Join(cache, "cache", "download"),
		"GOSUMDB=off", "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local"}
	run(t, moduleDir, env, "go", append([]string{"list", "-deps", "-e=false"}, pkgs...)...)
	rootTar := filepath.Join(dir, "rootfs.tar")
	if out, err := exec.Command("tar", "--numeric-owner", "-C", root, "-cf", rootTar, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar %s: %v: %s", root, err, out)
	}
	os.RemoveAll(root)

	// A working container of its own (buildah names it uniquely), removed
	// when done; the image is committed under ref only when complete.
	ctr := strings.TrimSpace(run(t, dir, nil, "buildah", "from", "scratch"))
	defer exec.Command("buildah", "rm", ctr).Run()
	run(t, dir, nil, "buildah", "add", ctr, rootTar, "/")
	run(t, dir, nil, "buildah", "config",
		"--env", "PATH=/go/bin:/usr/local/go/bin:/bin", "--env", "GOPATH=/go", "--env", "HOME=/root", "--env", "GOTOOLCHAIN=local",
		"--workingdir", "/go", "--cmd", "sh", "--label", label, ctr)

	// The warm compile: the module's files as COPY . . puts them in /src
	// (tracked and new files, not ignored ones), compiled there, then the
	// sources and the binary removed; the build cache stays.
	srcTar := filepath.Join(dir, "src.tar")
	files := run(t, moduleDir, nil, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	list := filepath.Join(dir, "files")
	if err := os.WriteFile(list, []byte(files), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "--numeric-owner", "--ignore-failed-read", "--null", "-C", moduleDir, "-T", list, "-cf", srcTar).CombinedOutput(); err != nil {
		t.Fatalf("tar the module at %s: %v: %s", moduleDir, err, tail(out))
	}
	run(t, dir, nil, "buildah", "add", ctr, srcTar, "/src")
	start := time.Now()
	run(t, dir, nil, "buildah", "run", "--isolation", "oci", "--runtime", "runc", "--workingdir", "/src", ctr,
		"sh", "-c", "GOPROXY=off "+script+" && rm -rf /src /tmp/warm")
	t.Logf("GoBuilder: the warm compile of %s (cold cache) took %s", strings.Join(pkgs, " "), time.Since(start).Round(time.Second))
	run(t, dir, nil, "buildah", "commit", "--rm", ctr, ref)
	return ref
}

// builderRef is GoBuilder's image name: the Go version, and a hash of
// go.sum, the packages and the warm compile's command.
func builderRef(sum []byte, gover, script string, pkgs []string) string {
	h := sha256.New()
	for _, part := range [][]byte{sum, []byte(gover), []byte(strings.Join(pkgs, " ")), []byte(script)} {
		fmt.Fprintf(h, "%d:%s\n", len(part), part)
	}
	return fmt.Sprintf("localhost/cccp-test/golang:%s-%s", strings.TrimPrefix(gover, "go"), hex.EncodeToString(h.Sum(nil)[:6]))
}

// WarmBuild is the shell command GoBuilder runs in /src to fill the image's
// build cache: deploy/Containerfile's compile, with the same environment
// (CGO_ENABLED=0, GOFLAGS=-buildvcs=false, GOCACHE at its default under
// HOME=/root) and flags (-trimpath, so the cache keys do not depend on
// where the sources are; -ldflags only change the link, which is redone
// anyway). Keep it in step with the Containerfile's RUN.
func WarmBuild(pkgs ...string) string {
	return `CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w -X main.version=warm" -o /tmp/warm/ ` + strings.Join(pkgs, " ")
}

// Mirror serves the local images as the public names given (name: local
// ref, e.g. "docker.io/library/debian:12": DebianRef), as an air-gapped
// site mirrors docker.io: it pushes each into a loopback registry and
// returns a registries.conf (the machine's, plus one [[registry]] table per
// repository) that sends those names there. Give it to cccp as
// $CONTAINERS_REGISTRIES_CONF. A pull through it stores the image under
// the public name, so when the test ends the public names that still point
// at these images are removed from the local storage again.
func Mirror(t testing.TB, images map[string]string) string {
	t.Helper()
	host := Registry(t, "", "")
	conf, err := os.ReadFile("/etc/containers/registries.conf")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	conf = append(conf, "\n# cccp test: public bases served from a loopback mirror\n"...)
	for name, local := range images {
		repo, tag, ok := strings.Cut(name, ":")
		if !ok || strings.Contains(tag, "/") {
			t.Fatalf("mirror %s: want a name with a tag", name)
		}
		path := repo[strings.IndexByte(repo, '/')+1:]
		if out, err := exec.Command("podman", "push", "--tls-verify=false", local, "docker://"+host+"/"+path+":"+tag).CombinedOutput(); err != nil {
			t.Fatalf("podman push %s: %v: %s", local, err, tail(out))
		}
		conf = fmt.Appendf(conf, "[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n\n", repo, host+"/"+path)
		id := imageID(local)
		t.Cleanup(func() {
			if id != "" && imageID(name) == id {
				exec.Command("podman", "untag", id, name).Run()
			}
		})
	}
	file := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(file, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func imageID(ref string) string {
	out, err := exec.Command("podman", "image", "inspect", "--format", "{{.Id}}", ref).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func hasLabel(ref, label string) bool {
	k, v, _ := strings.Cut(label, "=")
	out, err := exec.Command("podman", "image", "inspect", "--format", "{{index .Labels \""+k+"\"}}", ref).Output()
	return err == nil && strings.TrimSpace(string(out)) == v
}

func importRootfs(t testing.TB, root, ref, label string, changes ...string) {
	t.Helper()
	tarball := root + ".tar"
	if out, err := exec.Command("tar", "--numeric-owner", "-C", root, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar %s: %v: %s", root, err, out)
	}
	args := []string{"import"}
	for _, c := range append(changes, "LABEL "+label) {
		args = append(args, "--change", c)
	}
	if out, err := exec.Command("podman", append(args, tarball, ref)...).CombinedOutput(); err != nil {
		t.Fatalf("podman import %s: %v: %s", ref, err, out)
	}
	os.Remove(tarball)
}

func clearDir(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Name() == "partial" || e.Name() == "lock" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(stderr))
	}
	return string(out)
}

// tail is the last 2 KiB of a tool's output.
func tail(b []byte) []byte {
	if len(b) > 2048 {
		return b[len(b)-2048:]
	}
	return b
}
