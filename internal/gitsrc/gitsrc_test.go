package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testgit"
)

// makeRepo makes a repository with two commits on main and one on a
// branch "dev"; it returns its folder and the commits.
func makeRepo(t *testing.T) (dir, first, second, dev string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "repo")
	testgit.Init(t, dir, "main")
	testgit.Write(t, dir, map[string]string{"a.txt": "one\n"})
	first = testgit.Commit(t, dir, "one")
	testgit.Write(t, dir, map[string]string{"a.txt": "two\n"})
	second = testgit.Commit(t, dir, "two")
	testgit.Run(t, dir, "checkout", "-qb", "dev")
	testgit.Write(t, dir, map[string]string{"dev.txt": "dev\n"})
	dev = testgit.Commit(t, dir, "dev")
	testgit.Run(t, dir, "checkout", "-q", "main")
	return dir, first, second, dev
}

// serveDaemon serves the parent folder of repo with git daemon on a free
// loopback port and returns the git:// URL of repo.
func serveDaemon(t *testing.T, repo string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	base := filepath.Dir(repo)
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
		fmt.Sprintf("--port=%d", port), "--base-path="+base, "--enable=upload-pack", base)
	if err := cmd.Start(); err != nil {
		t.Skipf("git daemon cannot start: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait until it accepts connections (a readiness poll, not a timing
	// assertion).
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("git daemon never listened: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("git://127.0.0.1:%d/%s", port, filepath.Base(repo))
}

func TestCloneAndLsRemote(t *testing.T) {
	testgit.Require(t)
	repo, first, second, dev := makeRepo(t)
	urls := map[string]string{"file": "file://" + repo, "daemon": serveDaemon(t, repo)}
	for name, url := range urls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			refs, err := LsRemote(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			if refs["refs/heads/main"] != second || refs["refs/heads/dev"] != dev {
				t.Errorf("refs %v", refs)
			}
			tests := []struct {
				name string
				opts CloneOptions
				head string
				file string
			}{
				{"default branch", CloneOptions{}, second, "a.txt"},
				{"branch", CloneOptions{Branch: "dev"}, dev, "dev.txt"},
				{"exact commit", CloneOptions{Commit: first}, first, "a.txt"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					dest := filepath.Join(t.TempDir(), "co")
					if err := Clone(ctx, url, dest, tt.opts); err != nil {
						t.Fatal(err)
					}
					head, err := HeadCommit(ctx, dest)
					if err != nil || head != tt.head {
						t.Errorf("head %s %v, want %s", head, err, tt.head)
					}
					if _, err := os.Stat(filepath.Join(dest, tt.file)); err != nil {
						t.Error(err)
					}
					if n := testgit.Run(t, dest, "rev-list", "--count", "HEAD"); n != "1" {
						t.Errorf("history of %s commits, want a shallow clone", n)
					}
				})
			}
		})
	}
}

func TestCloneErrors(t *testing.T) {
	testgit.Require(t)
	ctx := context.Background()
	tests := []struct {
		name, url string
		unsafe    bool
	}{
		{"option injection", "--upload-pack=touch /tmp/x", true},
		{"ext transport", "ext::sh -c touch% /tmp/x", true},
		{"fd transport", "fd::3", true},
		{"missing repo hides token", "https://s3cr3t-token@127.0.0.1:1/none.git", false},
		{"missing repo hides password", "https://user:hunter22@127.0.0.1:1/none.git", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Clone(ctx, tt.url, filepath.Join(t.TempDir(), "co"), CloneOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrUnsafeURL) != tt.unsafe {
				t.Errorf("unsafe %v: %v", !tt.unsafe, err)
			}
			if strings.Contains(err.Error(), "s3cr3t-token") || strings.Contains(err.Error(), "hunter22") {
				t.Errorf("secret in error: %v", err)
			}
			_, err = LsRemote(ctx, tt.url)
			if err == nil || strings.Contains(err.Error(), "s3cr3t-token") || strings.Contains(err.Error(), "hunter22") {
				t.Errorf("ls-remote: %v", err)
			}
		})
	}
	t.Run("canceled", func(t *testing.T) {
		repo, _, _, _ := makeRepo(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := Clone(cctx, "file://"+repo, filepath.Join(t.TempDir(), "co"), CloneOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	})
}

func TestChangedFilesAndShow(t *testing.T) {
	testgit.Require(t)
	repo, first, _, _ := makeRepo(t)
	ctx := context.Background()
	os.WriteFile(filepath.Join(repo, "new.txt"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(repo, "sub"), 0o755)
	os.WriteFile(filepath.Join(repo, "sub", "u.txt"), []byte("x"), 0o644)
	got, err := ChangedFiles(ctx, filepath.Join(repo, "sub"), first)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"a.txt", "new.txt", "sub/u.txt"}; !slices.Equal(got, want) {
		t.Errorf("changed %v, want %v", got, want)
	}
	data, ok, err := ShowFile(ctx, repo, first, "a.txt")
	if err != nil || !ok || string(data) != "one\n" {
		t.Errorf("show: %q %v %v", data, ok, err)
	}
	if _, ok, err := ShowFile(ctx, repo, first, "new.txt"); ok || err != nil {
		t.Errorf("show of a file not at rev: %v %v", ok, err)
	}
	top, err := TopLevel(ctx, filepath.Join(repo, "sub"))
	if err != nil || top != repo {
		t.Errorf("top %q %v", top, err)
	}
}

func TestResolverResolvesBranchToItsCommit(t *testing.T) {
	dir := testgit.Repo(t, "master", map[string]string{"a": "1"})
	first := testgit.Run(t, dir, "rev-parse", "HEAD")
	testgit.Run(t, dir, "checkout", "-q", "-b", "feature")
	testgit.Write(t, dir, map[string]string{"a": "2"})
	feature := testgit.Commit(t, dir, "feature")
	url := "file://" + dir
	for _, tc := range []struct {
		branch, want, wantErr string
	}{
		{branch: "master", want: first},
		{branch: "feature", want: feature},
		{branch: "", want: feature}, // HEAD: the checked-out branch
		{branch: "nope", wantErr: "has no refs/heads/nope"},
	} {
		t.Run(tc.branch, func(t *testing.T) {
			got, err := Resolver{}.Resolve(context.Background(), url, tc.branch)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve(%q) = %q, %v; want an error with %q", tc.branch, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Resolve(%q) = %q, %v; want %s", tc.branch, got, err, tc.want)
			}
		})
	}
}
