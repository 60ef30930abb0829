package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// asUser runs argv as uid:gid (no supplementary groups) and returns its
// output and error.
func asUser(uid, gid uint32, argv ...string) ([]byte, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	return cmd.CombinedOutput()
}

// TestBoxFoldersUnderARestrictiveUmask: cccp runs under the shipped
// systemd unit's UMask=0027. The folders on the way to a box (made by
// New and Open) still come out 0711 and let the sandbox user through,
// the files it must read (the podman shim, registries.conf) keep their
// modes, and a script runs.
func TestBoxFoldersUnderARestrictiveUmask(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	top, err := os.MkdirTemp("/tmp", "um")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(top)
	os.Chmod(top, 0o711)
	dir := filepath.Join(top, "b", "x") // both made by New
	s, err := New(Config{Scope: "test", Dir: dir, Pool: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Open(context.Background(), "test-"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	uid, gid := b.UID()
	for _, p := range []string{filepath.Join(top, "b"), dir, b.user.dir, b.dir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o711 {
			t.Errorf("%s is %v; want 0711", p, got)
		}
	}
	if out, err := asUser(uid, gid, "stat", filepath.Join(b.dir, "home")); err != nil {
		t.Errorf("the sandbox user cannot reach its home %s: %v: %s", filepath.Join(b.dir, "home"), err, out)
	}
	shim := filepath.Join(b.dir, "podman-shim")
	if err := writePodmanShim(shim); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteRegistriesConf([]string{"127.0.0.1:5000"}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{shim: 0o755, b.RegistriesConf(): 0o644} {
		if fi, err := os.Stat(p); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s is %v; want %v", p, fi.Mode().Perm(), want)
		}
		if out, err := asUser(uid, gid, "head", "-c1", p); err != nil {
			t.Errorf("the sandbox user cannot read %s: %v: %s", p, err, out)
		}
	}
	res, err := b.Run(context.Background(), Script{Checkout: checkout(t, "#!/bin/sh\necho ran\n"), Argv: []string{"./test.sh"}})
	if err != nil || res.ExitCode != 0 {
		t.Errorf("run under umask 0027: %+v, %v", res, err)
	}
}

// TestNewRefusesAFolderTheUsersCannotPass: a folder above Dir that is not
// cccp's to change and that the sandbox users cannot pass makes New
// refuse, naming it, rather than every script failing later.
func TestNewRefusesAFolderTheUsersCannotPass(t *testing.T) {
	top := t.TempDir()
	os.Chmod(top, 0o700)
	_, err := New(Config{Scope: "test", Dir: filepath.Join(top, "boxes"), Pool: 1})
	if err == nil || !strings.Contains(err.Error(), top+" does not let the sandbox users through") {
		t.Errorf("New under a 0700 folder = %v; want a refusal naming %s", err, top)
	}
}
