// Package sandbox runs what a repository controls (its prebuild and test
// scripts, the containers of its image) in a box: as an unprivileged user,
// never root, with no view of cccp's files, environment, processes,
// listeners or other runs, under limits, and with nothing left running
// when the box is closed.
//
// A Box is one stage's box. It is made of:
//
//   - a user of its own while it is open: one of a pool of sandbox users
//     (User, User-1, ..., Config.Pool of them; hack/install-deps.sh makes
//     4), each with subordinate ids of its own, handed to one box at a time
//     across every cccp on the machine (internal/idpool). Two boxes open at
//     once never share a uid, so neither can signal or trace the other's
//     processes nor read its files; a box waits for a free user when all
//     are in use. The users are cccp's alone: New refuses subordinate ids
//     that another user, group or process of the machine has an id in, or
//     that two users of the pool share. A user is handed out only once
//     nothing runs as it or its subordinate ids (what a crashed cccp of any
//     Scope left is killed), and given back only once nothing does and
//     nothing it owns is left where the next box could read it: in the
//     host's /tmp, /var/tmp, /dev/shm, /dev/mqueue and its home (removed
//     without following a symlink or entering another mount; box folders
//     of the layout of before, <home>/b, go with them), nor in a box
//     folder a crashed cccp left;
//   - a folder of its own, root's, under Config.Dir (root's, outside
//     every sandbox user's home), with folders of its user inside (its
//     podman storage, a runtime folder, the podman service's socket),
//     removed on Close;
//   - cgroup v1 groups (pids, memory, cpu, freezer) under
//     <CgroupRoot>/<controller>/cccp-sandbox/<box>, holding every process
//     of the box: scripts, the podman service, conmon, the containers and
//     rootless podman's pause process. They carry the limits, and Close
//     freezes the group, kills every process in it and checks it is empty;
//   - a rootless `podman system service` run as the sandbox user in a
//     network namespace of its own (no interface but a downed loopback), so
//     a container that a script starts through it with --network host still
//     reaches nothing of the host. Images come in by a pull that podman,
//     as the same user, makes from the host's network (the embedded
//     registry is on loopback); TLS is then verified for every registry
//     but the ones named insecure in the box's registries.conf;
//   - scripts run by bubblewrap as the sandbox user, in new user, mount,
//     PID, IPC, UTS, network and cgroup namespaces, with user namespaces
//     disabled inside: read-only /usr and a handful of /etc files, a fresh
//     /proc of its own PID namespace, a private /tmp and HOME (tmpfs), the
//     checkout bound at /src (writable, the only writable path that
//     outlives the script) and the podman socket at /run/podman/podman.sock.
//     The environment is PATH, HOME, TMPDIR, CONTAINER_HOST and what the
//     caller passes (IMAGE_NAME, CONTAINER_NAME); nothing of cccp's.
//
// The podman service's HOME, XDG_RUNTIME_DIR and TMPDIR, its storage and
// run root are folders of the box; only its lock memory
// (/dev/shm/libpod_rootless_lock_<uid>) is the user's, and goes when the
// box is closed.
//
// The checkout is bind-mounted (by cccp, as root) into the box folder
// before bubblewrap binds it at /src, so the sandbox user needs no access
// to the path above it (cccp's DATA stays 0700 root).
//
// What a box does not guarantee:
//
//   - A container a script starts through its podman service may
//     bind-mount host paths its user can reach: what any local user sees
//     of the host's file system (world-readable files under /etc, /usr).
//     Other boxes' folders are 0700 of other users, cccp's files root's.
//   - When cccp itself dies, the kernel frees the users its boxes held at
//     once, while their processes, files and box folders live on until a
//     cccp hands such a user out (it kills and sweeps first) or one of the
//     same Scope starts (Cleanup); their cgroups stay until a cccp of the
//     same Scope starts. A user that cannot be cleared or swept is kept
//     from boxes until the cccp that found it ends.
//   - What a box's user can change without owning it (a file another
//     owns and lets others write, a folder it may write through a group or
//     an ACL; world-writable folders are swept) can carry over to the next
//     box of the same user.
//   - With ServiceOnHostNetwork (test-network: true) the service, and a
//     container started with --network host, share the host's network
//     namespace and reach its loopback listeners.
//   - The limits are cgroup v1 (pids, memory, cpu; freezer to kill); on a
//     machine without them New logs which are missing and the box runs
//     without those limits. Disk use in the checkout and the box's storage
//     is not limited.
//   - The kernel is shared: a kernel bug reachable from an unprivileged
//     user namespace is reachable from a box (seccomp is not applied).
package sandbox

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cccp-project/cccp/internal/idpool"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/regconf"
	"github.com/cccp-project/cccp/internal/tailbuf"
	"golang.org/x/sys/unix"
)

// DefaultUser is the sandbox user hack/install-deps.sh creates, the
// first of the pool.
const DefaultUser = "cccp-sandbox"

// DefaultPool is how many sandbox users hack/install-deps.sh creates:
// DefaultUser, DefaultUser-1, -2, -3.
const DefaultPool = 4

// Limits bound one box (everything in it together: scripts, podman,
// containers).
type Limits struct {
	// Pids is the most processes and threads at once; default 1024.
	Pids int
	// Memory is the most memory in bytes (tmpfs included); default 2 GiB.
	Memory int64
	// CPUs is the CPU time as a number of cores; default 1.
	CPUs float64
	// Output is how many bytes of a script's output reach the log;
	// default tailbuf.DefaultLimit.
	Output int64
}

func (l Limits) withDefaults() Limits {
	if l.Pids <= 0 {
		l.Pids = 1024
	}
	if l.Memory <= 0 {
		l.Memory = 2 << 30
	}
	if l.CPUs <= 0 {
		l.CPUs = 1
	}
	return l
}

// Config configures the sandbox. The zero value uses DefaultUser, its home,
// /sys/fs/cgroup and default limits.
type Config struct {
	// User is the first unprivileged user that runs repository code; it
	// needs subuid/subgid ranges for rootless podman. Never root.
	User string
	// Pool is how many users boxes run as, one box per user at a time:
	// User, then User-1 to User-(Pool-1). A user of the pool that does not
	// exist is left out (logged), so fewer boxes are open at once; User
	// must exist. Default DefaultPool.
	Pool int
	// Dir holds the boxes, in a folder per user (named by its uid);
	// default DefaultDir. Dir and every folder above it must be root's and
	// writable by root alone (New checks), and let the users through
	// (0711). A box's runroot (<Dir>/<uid>/<scope>-<8 hex>/runroot) must
	// stay within podman's 50 characters.
	Dir string
	// LockDir holds the lock files that hand out the users; default
	// idpool.DefaultDir. Every cccp on the machine must use the same.
	LockDir string
	// Scope names this cccp's boxes (up to 6 characters of [a-z0-9]; a
	// hash of its data folder), so that Cleanup removes only its own when
	// several cccp processes share the sandbox user. Default "cccp".
	Scope string
	// CgroupRoot is where the cgroup v1 controllers are mounted; default
	// /sys/fs/cgroup.
	CgroupRoot string
	Limits     Limits
	// IDFiles are the files that name the users' subordinate ids and the
	// machine's users and groups; default the machine's (/etc/subuid,
	// /etc/subgid, /etc/passwd, /etc/group).
	IDFiles idpool.IDFiles
	// Bwrap and Podman are the executables; default from PATH.
	Bwrap, Podman string
	Logger        *slog.Logger
}

// Sandbox makes boxes.
type Sandbox struct {
	cfg     Config
	users   []boxUser       // the pool, in order
	pool    *idpool.Cleared // which users are in use, machine-wide
	cgroups []string        // usable controllers

	// kept are the leases of users that could not be cleared or swept:
	// held (their lock files open) so no box gets them until cccp ends.
	keptMu sync.Mutex
	kept   []*idpool.Lease
}

// boxUser is a sandbox user of the pool and the folder its boxes live in.
type boxUser struct {
	name     string
	uid, gid uint32
	home     string
	// subUID and subGID are its subordinate ids: its rootless
	// containers' users on the host.
	subUID, subGID idpool.Span
	dir            string
}

// ids are the host ids the user's boxes run as.
func (u boxUser) ids() idpool.IDs {
	return idpool.IDs{
		UIDs: []idpool.Span{{Start: u.uid, Size: 1}, u.subUID},
		GIDs: []idpool.Span{{Start: u.gid, Size: 1}, u.subGID},
	}
}

// controllers a box uses when the machine has them (cgroup v1).
var controllers = []string{"pids", "memory", "cpu", "freezer"}

// New checks that cccp can run boxes here: it runs as root (to switch to
// User and to make cgroups), User exists and is not root, bubblewrap is
// there. Which cgroup controllers work is probed; a missing one is logged
// and its limit not enforced.
func New(cfg Config) (*Sandbox, error) {
	if cfg.User == "" {
		cfg.User = DefaultUser
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/sys/fs/cgroup"
	}
	if cfg.Bwrap == "" {
		cfg.Bwrap = "bwrap"
	}
	if cfg.Podman == "" {
		cfg.Podman = "podman"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Pool <= 0 {
		cfg.Pool = DefaultPool
	}
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("sandbox: cccp runs as uid %d; it must run as root to run repository code as %q", os.Geteuid(), cfg.User)
	}
	if _, err := exec.LookPath(cfg.Bwrap); err != nil {
		return nil, fmt.Errorf("sandbox: bubblewrap: %w", err)
	}
	if cfg.Scope == "" {
		cfg.Scope = "cccp"
	}
	if len(cfg.Scope) > 6 || strings.Trim(cfg.Scope, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return nil, fmt.Errorf("sandbox scope %q: want up to 6 of [a-z0-9]", cfg.Scope)
	}
	s := &Sandbox{cfg: cfg}
	users, err := poolUsers(cfg)
	if err != nil {
		return nil, err
	}
	root, err := boxRoot(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	keys := make([]string, len(users))
	ids := make([]idpool.IDs, len(users))
	for i := range users {
		if users[i].dir, err = userDir(root, users[i].uid); err != nil {
			return nil, fmt.Errorf("sandbox user %s: %w", users[i].name, err)
		}
		keys[i] = "sandbox-user-" + users[i].name
		ids[i] = users[i].ids()
	}
	pool, err := idpool.New(cfg.LockDir, keys)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if s.pool, err = idpool.NewCleared(pool, ids, cfg.Logger, 0); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s.users = users
	for _, c := range controllers {
		p := filepath.Join(cfg.CgroupRoot, c, "cccp-sandbox")
		if err := os.MkdirAll(p, 0o755); err != nil {
			cfg.Logger.Warn("sandbox: cgroup controller unusable; its limit is not enforced", "controller", c, "err", err)
			continue
		}
		s.cgroups = append(s.cgroups, c)
	}
	// Without pids or freezer, Close cannot find what a script started
	// (a detached container, a setsid child): fail closed rather than let
	// repository code outlive its stage.
	if !slices.Contains(s.cgroups, "pids") && !slices.Contains(s.cgroups, "freezer") {
		return nil, fmt.Errorf("sandbox: neither the pids nor the freezer cgroup controller is usable under %s: "+
			"what a script starts could outlive its stage (cgroup v1 with both controllers is needed; see hack/install-deps.sh)", cfg.CgroupRoot)
	}
	return s, nil
}

// Users are the names of the pool's users, in the order they are handed
// out.
func (s *Sandbox) Users() []string {
	names := make([]string, len(s.users))
	for i, u := range s.users {
		names[i] = u.name
	}
	return names
}

// poolUsers looks up the pool's users: User must exist, the others may
// not (logged and left out); none may be root or appear twice.
func poolUsers(cfg Config) ([]boxUser, error) {
	var users []boxUser
	seen := map[uint32]string{}
	for i := range cfg.Pool {
		name := cfg.User
		if i > 0 {
			name = fmt.Sprintf("%s-%d", cfg.User, i)
		}
		u, err := user.Lookup(name)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("sandbox user %q: %w (hack/install-deps.sh creates it)", name, err)
			}
			cfg.Logger.Warn("sandbox: user of the pool missing; fewer boxes can be open at once (hack/install-deps.sh creates them)",
				"user", name, "err", err)
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		if uid == 0 {
			return nil, fmt.Errorf("sandbox user %q is root", name)
		}
		if other, ok := seen[uint32(uid)]; ok {
			return nil, fmt.Errorf("sandbox users %q and %q share uid %d", other, name, uid)
		}
		seen[uint32(uid)] = name
		bu := boxUser{name: name, uid: uint32(uid), gid: uint32(gid), home: u.HomeDir}
		if err := subIDs(cfg.IDFiles, &bu); err != nil {
			if i == 0 {
				return nil, fmt.Errorf("sandbox user %q: %w", name, err)
			}
			cfg.Logger.Warn("sandbox: user of the pool left out; fewer boxes can be open at once", "user", name, "err", err)
			continue
		}
		users = append(users, bu)
	}
	if err := disjoint(cfg.IDFiles, users); err != nil {
		return nil, err
	}
	return users, nil
}

// Controllers are the cgroup controllers that bound boxes here.
func (s *Sandbox) Controllers() []string { return slices.Clone(s.cgroups) }

// Box is one stage's box; Close it.
type Box struct {
	// ServiceOnHostNetwork runs the podman service in the host's network
	// namespace, set before Podman is first called: for a cccp.yaml with
	// test-network: true, whose container needs a network (rootless
	// slirp4netns, host loopback off). A script can then also start a
	// container with --network host, which shares the host's network
	// namespace, loopback listeners included.
	ServiceOnHostNetwork bool

	s     *Sandbox
	name  string
	dir   string
	cg    map[string]string // controller -> group folder
	user  boxUser
	lease *idpool.Lease // the user, held until Close

	svc     *exec.Cmd
	svcDone chan struct{}
	scripts int
}

// subgroups makes cgroups named name inside the box's.
func (b *Box) subgroups(name string) (map[string]string, error) {
	groups := map[string]string{}
	for c, p := range b.cg {
		sub := filepath.Join(p, name)
		if err := os.Mkdir(sub, 0o755); err != nil {
			return groups, fmt.Errorf("cgroup %s: %w", c, err)
		}
		groups[c] = sub
	}
	return groups, nil
}

// Open makes a box; label ("test") is logged with the box's own name
// (<scope>-<8 random hex>), which names its folder and cgroups. It waits
// for a user of the pool while every one is in use by another box (of
// this or another cccp), until ctx ends.
func (s *Sandbox) Open(ctx context.Context, label string) (*Box, error) {
	b := make([]byte, 4)
	rand.Read(b)
	// Short: podman refuses a runroot path of more than 50 characters.
	name := s.cfg.Scope + "-" + hex.EncodeToString(b)
	lease, u, err := s.acquire(ctx, name, label)
	if err != nil {
		return nil, fmt.Errorf("open box %s: sandbox user: %w", name, err)
	}
	s.cfg.Logger.Debug("sandbox: open box", "box", name, "for", label, "user", u.name)
	box := &Box{s: s, name: name, dir: filepath.Join(u.dir, name), cg: map[string]string{}, user: u, lease: lease}
	// The box folder is root's (0711), so the sandbox user can replace
	// none of its entries; only the folders below are the user's.
	if err := mkdirRoot(box.dir); err != nil {
		box.Close()
		return nil, fmt.Errorf("open box %s: %w", name, err)
	}
	for _, d := range []string{"home", "xdg", "storage", "runroot", "tmp"} {
		if err := mkdirFor(filepath.Join(box.dir, d), u.uid, u.gid); err != nil {
			box.Close()
			return nil, fmt.Errorf("open box %s: %w", name, err)
		}
	}
	l := s.cfg.Limits
	for _, c := range s.cgroups {
		p := filepath.Join(s.cfg.CgroupRoot, c, "cccp-sandbox", name)
		if err := os.Mkdir(p, 0o755); err != nil {
			box.Close()
			return nil, fmt.Errorf("open box %s: cgroup: %w", name, err)
		}
		box.cg[c] = p
		var err error
		switch c {
		case "pids":
			err = writeFile(p, "pids.max", strconv.Itoa(l.Pids))
		case "memory":
			err = writeFile(p, "memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10))
			if err == nil {
				// Swap counts too where the kernel accounts it.
				writeFile(p, "memory.memsw.limit_in_bytes", strconv.FormatInt(l.Memory, 10))
			}
		case "cpu":
			err = writeFile(p, "cpu.cfs_quota_us", strconv.Itoa(int(l.CPUs*100000)))
		}
		if err != nil {
			box.Close()
			return nil, fmt.Errorf("open box %s: limit %s: %w", name, c, err)
		}
	}
	return box, nil
}

func writeFile(dir, name, v string) error {
	return os.WriteFile(filepath.Join(dir, name), []byte(v), 0)
}

// Name is the box's name.
func (b *Box) Name() string { return b.name }

// UID is the uid and gid the box's scripts and podman run as (root of its
// containers is that uid on the host).
func (b *Box) UID() (uid, gid uint32) { return b.user.uid, b.user.gid }

// startIn starts cmd (already set up to run as the sandbox user) as a
// member of the box's cgroups before it runs anything of its own: a shell
// waits on a pipe until cccp has moved it, then execs cmd's program.
func (b *Box) startIn(cmd *exec.Cmd, groups map[string]string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	argv := append([]string{"/bin/sh", "-c", `read -r _ <&3 || exit 125; exec 3<&-; exec "$@"`, "cccp-box", cmd.Path}, cmd.Args[1:]...)
	cmd.Path, cmd.Args = "/bin/sh", argv
	// fd 3 in the child; callers' ExtraFiles move up by one.
	cmd.ExtraFiles = append([]*os.File{r}, cmd.ExtraFiles...)
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	for c, p := range groups {
		if err := writeFile(p, "cgroup.procs", strconv.Itoa(cmd.Process.Pid)); err != nil {
			w.Close()
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("enter cgroup %s: %w", c, err)
		}
	}
	_, err = w.Write([]byte("go\n"))
	w.Close()
	return err
}

func (b *Box) credential() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: b.user.uid, Gid: b.user.gid, Groups: []uint32{}},
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
}

// userEnv is the environment of podman run as the sandbox user.
func (b *Box) userEnv() []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + filepath.Join(b.dir, "home"),
		"XDG_RUNTIME_DIR=" + filepath.Join(b.dir, "xdg"),
		"TMPDIR=" + filepath.Join(b.dir, "tmp"),
	}
}

// Socket is the path of the box's podman service socket (on the host).
func (b *Box) Socket() string { return filepath.Join(b.dir, "xdg", "podman.sock") }

// RegistriesConf is where WriteRegistriesConf writes.
func (b *Box) RegistriesConf() string { return filepath.Join(b.dir, "registries.conf") }

// Podman starts the box's podman service, once, and returns a runner that
// talks to it: every container it runs is in the box (its cgroups, its
// network namespace, its storage). The service runs containers with runc.
func (b *Box) Podman(ctx context.Context) (*podman.Runner, error) {
	if b.svc == nil {
		if err := b.startService(ctx); err != nil {
			return nil, err
		}
	}
	return &podman.Runner{Remote: b.Socket(), Binary: b.s.cfg.Podman, Logger: b.s.cfg.Logger}, nil
}

// Puller returns a runner that pulls into the box's storage as the sandbox
// user from the host's network, with the box's registries.conf. Start the
// service (Podman) first: the pull joins the service's user namespace.
func (b *Box) Puller() *podman.Runner {
	return &podman.Runner{
		Root: filepath.Join(b.dir, "storage"), RunRoot: filepath.Join(b.dir, "runroot"), StorageDriver: "overlay",
		Env: b.userEnv(), SysProcAttr: b.credential(), RegistriesConf: b.RegistriesConf(),
		Dir: b.dir, Binary: b.s.cfg.Podman, Logger: b.s.cfg.Logger,
	}
}

// WriteRegistriesConf writes the box's registries.conf: the machine's own
// (/etc/containers/registries.conf) with every host in insecure marked
// `insecure = true` (plain HTTP or an unverified certificate allowed),
// every other registry verified.
func (b *Box) WriteRegistriesConf(insecure []string) error {
	if err := regconf.Write(b.RegistriesConf(), regconf.Base(os.Getenv), insecure); err != nil {
		return err
	}
	// The sandbox user's podman reads it; the umask must not take that away.
	return os.Chmod(b.RegistriesConf(), 0o644)
}

func (b *Box) startService(ctx context.Context) error {
	p := b.Puller()
	args := append(p.GlobalArgs(), "system", "service", "--time", "0", "unix://"+b.Socket())
	cmd := exec.Command(b.s.cfg.Podman, args...)
	cmd.Env = append(b.userEnv(), "CONTAINERS_REGISTRIES_CONF="+b.RegistriesConf())
	cmd.Dir = b.dir // the sandbox user may not enter cccp's working directory
	cmd.SysProcAttr = b.credential()
	// The sandbox user cannot enter cccp's working folder (a test's is a
	// 0700 folder of root's): the service runs from the root folder.
	cmd.Dir = "/"
	// A network namespace of its own: containers run with --network host
	// through this service see no host interface.
	if !b.ServiceOnHostNetwork {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
	}
	log := &tailbuf.Writer{Lines: 10}
	cmd.Stdout, cmd.Stderr = log, log
	if err := b.startIn(cmd, b.cg); err != nil {
		return fmt.Errorf("box %s: start podman service: %w", b.name, err)
	}
	b.svc = cmd
	b.svcDone = make(chan struct{})
	go func() { cmd.Wait(); close(b.svcDone) }()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		if st, err := os.Stat(b.Socket()); err == nil && st.Mode().Type() == fs.ModeSocket {
			break
		}
		select {
		case <-b.svcDone:
			return fmt.Errorf("box %s: podman service exited: %s", b.name, strings.Join(log.Tail(), " | "))
		case <-ctx.Done():
			return fmt.Errorf("box %s: start podman service: %w", b.name, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("box %s: podman service did not come up in 30s", b.name)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The service joins (or makes) rootless podman's user namespace and its
	// pause process lazily; one call through it makes that happen inside
	// the box's cgroups before any pull from outside them.
	r := &podman.Runner{Remote: b.Socket(), Binary: b.s.cfg.Podman}
	if _, err := r.ImageLabels(ctx, "cccp-sandbox-warmup-none"); err != nil && !errors.Is(err, podman.ErrNotFound) {
		b.s.cfg.Logger.Debug("sandbox: warm-up", "err", err)
	}
	return nil
}

// Script is a repository's script to run in the box.
type Script struct {
	// Checkout is the repository's folder on the host; it is bound at
	// /src, writable, and owned by the sandbox user from then on. It must
	// lie where closing a box removes nothing: in a folder that others may
	// not write, below none of the sandbox user's (cccp's data folder).
	Checkout string
	// Dir is the working directory, relative to Checkout.
	Dir string
	// Argv is the command, its first element relative to Checkout (or a
	// program on the sandbox's PATH, such as /bin/sh).
	Argv []string
	// Env are the documented variables (IMAGE_NAME=..., CONTAINER_NAME=...).
	Env []string
	// Podman binds the box's podman socket (start it with Podman first).
	Podman bool
	// Output receives the script's stdout and stderr, bounded (see
	// Limits.Output); it may be nil.
	Output io.Writer
}

// Result is how a script ended.
type Result struct {
	ExitCode int
	// Reason says why the box ended the script, or a limit it ran into:
	// "deadline exceeded", "process limit (1024) reached", "memory limit
	// (2147483648 bytes) reached"; "" otherwise.
	Reason string
	// Tail are the last lines of output.
	Tail []string
}

// Dest is where the checkout is seen inside the box.
const Dest = "/src"

// Run runs a script and waits for it. When ctx ends, the script's whole
// process tree is killed (its PID namespace ends with it) and Reason says
// so. err is for a script that could not be started.
func (b *Box) Run(ctx context.Context, sc Script) (Result, error) {
	if err := b.user.outsideSweep(sc.Checkout); err != nil {
		return Result{}, fmt.Errorf("box %s: %w", b.name, err)
	}
	if err := chownTree(sc.Checkout, int(b.user.uid), int(b.user.gid)); err != nil {
		return Result{}, fmt.Errorf("box %s: hand the checkout to the sandbox user: %w", b.name, err)
	}
	// The checkout is bind-mounted into the box folder, so the sandbox user
	// needs no way through the folders above it (cccp's DATA stays 0700).
	// The mount point is made afresh in the box folder (root's) and
	// removed after: nothing already there is ever mounted over.
	src := filepath.Join(b.dir, "src")
	if err := mkdirFor(src, b.user.uid, b.user.gid); err != nil {
		return Result{}, fmt.Errorf("box %s: checkout mount point: %w", b.name, err)
	}
	defer os.Remove(src)
	if err := syscall.Mount(sc.Checkout, src, "", syscall.MS_BIND|syscall.MS_PRIVATE, ""); err != nil {
		return Result{}, fmt.Errorf("box %s: bind the checkout: %w", b.name, err)
	}
	defer unmount(src)
	before := b.counters()

	args := b.bwrapArgs(sc, src)
	out := &tailbuf.Writer{Out: sc.Output, Limit: b.s.cfg.Limits.Output}
	cmd := exec.Command(b.s.cfg.Bwrap, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = b.credential()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	// The script gets cgroups of its own inside the box's (the box's
	// limits hold for both together), so that its end can be made sure of:
	// everything in them is killed, and waited for, before Run returns.
	b.scripts++
	groups, err := b.subgroups(fmt.Sprintf("script-%d", b.scripts))
	defer func() {
		if err := killAll(groups); err != nil {
			b.s.cfg.Logger.Warn("sandbox: script processes survive", "box", b.name, "err", err)
		}
		for _, p := range groups {
			os.Remove(p)
		}
	}()
	if err != nil {
		return Result{}, fmt.Errorf("box %s: %w", b.name, err)
	}
	if err := b.startIn(cmd, groups); err != nil {
		return Result{}, fmt.Errorf("box %s: start script: %w", b.name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	var reason string
	select {
	case werr = <-done:
	case <-ctx.Done():
		// bwrap's reaper is PID 1 of the script's namespace and dies with
		// bwrap (--die-with-parent); the kernel then kills the rest of it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Process.Kill()
		werr = <-done
		reason = "deadline exceeded"
		if errors.Is(ctx.Err(), context.Canceled) {
			reason = "cancelled"
		}
	}
	res := Result{ExitCode: -1, Tail: out.Tail()}
	var exitErr *exec.ExitError
	switch {
	case werr == nil:
		res.ExitCode = 0
	case errors.As(werr, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	}
	if reason == "" {
		reason = b.limitHit(before)
	}
	res.Reason = reason
	return res, nil
}

// counters are the cgroup counters that tell a limit was hit.
type counters struct{ pidsMax, memFail, oomKill int64 }

// counters sums the counters over the box's cgroups and their subgroups:
// cgroup v1 counts an event in the group of the process that met it.
func (b *Box) counters() counters {
	var c counters
	walk := func(controller string, f func(dir string)) {
		if p, ok := b.cg[controller]; ok {
			filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					f(path)
				}
				return nil
			})
		}
	}
	walk("pids", func(dir string) { c.pidsMax += field(filepath.Join(dir, "pids.events"), "max") })
	walk("memory", func(dir string) {
		for _, f := range []string{"memory.failcnt", "memory.memsw.failcnt"} {
			if dt, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				n, _ := strconv.ParseInt(strings.TrimSpace(string(dt)), 10, 64)
				c.memFail += n
			}
		}
		c.oomKill += field(filepath.Join(dir, "memory.oom_control"), "oom_kill")
	})
	return c
}

func (b *Box) limitHit(before counters) string {
	now := b.counters()
	l := b.s.cfg.Limits
	switch {
	case now.pidsMax > before.pidsMax:
		return fmt.Sprintf("process limit (%d) reached", l.Pids)
	case now.oomKill > before.oomKill || now.memFail > before.memFail:
		return fmt.Sprintf("memory limit (%d bytes) reached", l.Memory)
	}
	return ""
}

// field reads "name N" from a cgroup key-value file.
func field(path, name string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == name {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// etcFiles are the host's /etc entries a script sees (read-only): enough
// for a shell, name lookups of users and podman's client; nothing of cccp.
var etcFiles = []string{"passwd", "group", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
	"alternatives", "containers", "ssl", "ca-certificates", "localtime", "mime.types"}

func (b *Box) bwrapArgs(sc Script, src string) []string {
	args := []string{
		"--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
		"--hostname", "cccp-sandbox",
		"--ro-bind", "/usr", "/usr",
	}
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		p := "/" + d
		if t, err := os.Readlink(p); err == nil {
			args = append(args, "--symlink", t, p)
		} else if st, err := os.Stat(p); err == nil && st.IsDir() {
			args = append(args, "--ro-bind", p, p)
		}
	}
	for _, f := range etcFiles {
		args = append(args, "--ro-bind-try", "/etc/"+f, "/etc/"+f)
	}
	home := "/home/sandbox"
	mem := strconv.FormatInt(b.s.cfg.Limits.Memory, 10)
	args = append(args,
		"--proc", "/proc", "--dev", "/dev",
		"--size", mem, "--tmpfs", "/tmp",
		"--size", mem, "--tmpfs", home,
		"--bind", src, Dest,
		"--chdir", filepath.Join(Dest, filepath.Clean("/"+sc.Dir)),
		"--clearenv",
		"--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
		"--setenv", "HOME", home,
		"--setenv", "TMPDIR", "/tmp",
	)
	if sc.Podman {
		args = append(args, "--bind", b.Socket(), "/run/podman/podman.sock",
			"--setenv", "CONTAINER_HOST", "unix:///run/podman/podman.sock")
		if shim := filepath.Join(b.dir, "podman-shim"); writePodmanShim(shim) == nil {
			args = append(args, "--ro-bind", shim, "/run/cccp/bin/podman",
				"--setenv", "PATH", "/run/cccp/bin:/usr/local/bin:/usr/bin:/bin")
		}
	}
	for _, e := range sc.Env {
		if k, v, ok := strings.Cut(e, "="); ok {
			args = append(args, "--setenv", k, v)
		}
	}
	argv := slices.Clone(sc.Argv)
	if len(argv) > 0 && !filepath.IsAbs(argv[0]) {
		argv[0] = filepath.Join(Dest, filepath.Clean("/"+argv[0]))
	}
	return append(append(args, "--"), argv...)
}

// podmanShim is the script's `podman` (/run/cccp/bin, first on its PATH): the client
// talks to the box's service, where flags that only a local podman takes
// (--runtime, --cgroup-manager, which scripts written for this machine
// pass) are refused; the shim drops them.
const podmanShim = `#!/bin/sh
# cccp sandbox: podman goes to this box's service; local-only flags are dropped.
skip=
for a; do
  shift
  if [ -n "$skip" ]; then skip=; continue; fi
  case "$a" in
    --runtime=*|--cgroup-manager=*) ;;
    --runtime|--cgroup-manager) skip=1 ;;
    *) set -- "$@" "$a" ;;
  esac
done
exec /usr/bin/podman "$@"
`

func writePodmanShim(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.WriteFile(path, []byte(podmanShim), 0o755); err != nil {
		return err
	}
	// Run by the sandbox user; the umask must not take that away.
	return os.Chmod(path, 0o755)
}

// Procs returns the processes in the box (from its cgroups), its
// scripts' included.
func (b *Box) Procs() []int { return procs(b.cg) }

func procs(groups map[string]string) []int {
	for _, c := range []string{"pids", "freezer", "memory"} {
		if p, ok := groups[c]; ok {
			var pids []int
			filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					pids = append(pids, readPids(filepath.Join(path, "cgroup.procs"))...)
				}
				return nil
			})
			return pids
		}
	}
	return nil
}

func readPids(path string) []int {
	dt, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(dt)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// Close ends everything in the box: it freezes its cgroup, kills every
// process in it, and removes its folder (storage, images, containers) and
// cgroups, then gives its user back to the pool: what still runs as the
// user or its subordinate ids is killed, and what they own in the host's
// shared folders (/tmp, /var/tmp, /dev/shm, /dev/mqueue) and in the
// user's home is removed. It reports an error when a process survives or
// a file cannot be removed; the user is then kept from other boxes until
// cccp ends.
func (b *Box) Close() error {
	var errs []error
	survivors := killAll(b.cg)
	if survivors != nil {
		errs = append(errs, fmt.Errorf("box %s: %w", b.name, survivors))
	}
	if b.svc != nil && b.svc.Process != nil {
		// Its process group too, in case a cgroup missed something.
		syscall.Kill(-b.svc.Process.Pid, syscall.SIGKILL)
	}
	if b.svcDone != nil {
		select {
		case <-b.svcDone:
		case <-time.After(5 * time.Second):
		}
	}
	for c, p := range b.cg {
		subs, _ := os.ReadDir(p)
		for _, d := range subs {
			if d.IsDir() {
				os.Remove(filepath.Join(p, d.Name()))
			}
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", c, err))
		}
	}
	if b.dir != "" { // "": a cgroup Cleanup found without a folder
		if err := removeAll(b.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if survivors == nil && b.lease != nil { // nil: a box Cleanup found, or closed
		if err := b.s.giveBack(b.user, b.lease); err != nil {
			errs = append(errs, fmt.Errorf("box %s: %w", b.name, err))
		}
		b.lease = nil // a second Close must not clear the user's next box
	} else if b.lease != nil {
		// Processes of the box survive: its user stays out of the pool
		// (a dropped lease would be released when its lock file is
		// collected).
		b.s.keep(b.lease)
		b.lease = nil
	}
	return errors.Join(errs...)
}

// acquire takes a user of the pool for the box name, waiting while all
// are in use, and sweeps what its ids left (as giveBack does) before it
// hands it out: a cccp that crashed while a box of it held the user gave
// it back unswept, and the next box, of another repository, must not
// find the last one's files. A user that cannot be swept is kept.
func (s *Sandbox) acquire(ctx context.Context, name, label string) (*idpool.Lease, boxUser, error) {
	for {
		lease, ok, err := s.pool.TryAcquire()
		if err == nil && !ok {
			s.cfg.Logger.Info("sandbox: every user of the pool is in use; waiting for one", "box", name, "for", label, "users", len(s.users))
			lease, err = s.pool.Acquire(ctx)
		}
		if err != nil {
			return nil, boxUser{}, err
		}
		u := s.users[lease.Index]
		err = s.removeLeftovers(u)
		if err == nil {
			err = s.removeStaleBoxes(u)
		}
		if err == nil {
			return lease, u, nil
		}
		s.keep(lease)
		s.cfg.Logger.Warn("sandbox: user kept from boxes: what an earlier box left cannot be removed", "user", u.name, "err", err)
	}
}

// keep holds lease until cccp ends: its user could not be cleared or
// swept. (A lease no longer referenced would be released when its lock
// file is collected.)
func (s *Sandbox) keep(lease *idpool.Lease) {
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	s.kept = append(s.kept, lease)
}

// sweep clears and sweeps every user no box holds (of any cccp: a crash
// left its processes running, or a layout of before its files), as
// giveBack does, and returns their names.
func (s *Sandbox) sweep() (swept []string, err error) {
	var errs []error
	for i, u := range s.users {
		lease, ok, err := s.pool.TryTake(i)
		if err != nil {
			errs = append(errs, fmt.Errorf("sandbox clean-up: user %s: %w", u.name, err))
		}
		if !ok {
			continue
		}
		if err := s.giveBack(u, lease); err != nil {
			errs = append(errs, fmt.Errorf("sandbox clean-up: %w", err))
			continue
		}
		swept = append(swept, u.name)
	}
	return swept, errors.Join(errs...)
}

// giveBack gives the user u, held by lease, back to the pool: what still
// runs as its ids is killed, what they left outside its boxes' folders is
// removed (see leftovers.go), and the pool kills again what runs before
// it lets the user go. A user whose processes do not die, or whose files
// cannot all be removed, is kept from other boxes until cccp ends.
func (s *Sandbox) giveBack(u boxUser, lease *idpool.Lease) error {
	err := s.pool.Clear(lease)
	if err == nil {
		err = s.removeLeftovers(u)
	}
	if err == nil {
		err = s.removeStaleBoxes(u)
	}
	if err != nil {
		s.keep(lease)
		return fmt.Errorf("sandbox user %s kept from other boxes: %w", u.name, err)
	}
	return s.pool.Release(lease)
}

// killAll freezes the groups (so nothing forks while it kills), kills
// every process in them, thaws them and waits until they are empty.
func killAll(groups map[string]string) error {
	freezer := groups["freezer"]
	for i := 0; i < 100; i++ {
		pids := procs(groups)
		if len(pids) == 0 {
			return nil
		}
		if freezer != "" {
			writeFile(freezer, "freezer.state", "FROZEN")
		}
		killMembers(groups, pids)
		if freezer != "" {
			writeFile(freezer, "freezer.state", "THAWED")
		}
		time.Sleep(10 * time.Millisecond * time.Duration(min(i+1, 10)))
	}
	return fmt.Errorf("processes left after kill: %v", procs(groups))
}

// killMembers sends SIGKILL to each of pids, listed a moment ago as
// members of groups, that still is one. A listed process may have ended
// and been reaped since, and its pid been taken by a process outside the
// box: so each is pinned by a pidfd first, the members are listed again,
// and the signal goes through the pidfd to a pid still listed. If the
// pinned process ended before the second listing, the signal reaches no
// one; if not, the pid listed was its own.
func killMembers(groups map[string]string, pids []int) {
	fds := map[int]int{}
	for _, pid := range pids {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			fds[pid] = fd
		}
	}
	still := procs(groups)
	for pid, fd := range fds {
		if slices.Contains(still, pid) {
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
		unix.Close(fd)
	}
}

// unmount undoes the checkout's bind mount; a symlink at p is not
// followed.
func unmount(p string) error {
	if err := syscall.Unmount(p, syscall.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("unmount %s: %w", p, err)
	}
	return nil
}

// removeAll removes a box folder; overlay mounts of its storage lived in
// the killed pause process's mount namespace and are gone with it. A
// checkout still bound in (a crash during a script) is unmounted first,
// never removed through the mount.
func removeAll(dir string) error {
	if err := unmount(filepath.Join(dir, "src")); err != nil {
		return err
	}
	err := os.RemoveAll(dir)
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// Cleanup removes what boxes of an earlier cccp of the same Scope left
// behind (a crash): every process in their cgroups, their folders. And
// every user of the pool that no box (of any cccp) holds is given back as
// Close gives a box's user back: what runs as it is killed, what it left
// is removed, box folders of crashed boxes of any Scope included. Call it
// at start, before any box of this scope is opened.
func (s *Sandbox) Cleanup(ctx context.Context) error {
	names := map[string]string{} // box name -> its folder ("" for a cgroup alone)
	mine := func(n string) bool { return strings.HasPrefix(n, s.cfg.Scope+"-") }
	for _, u := range s.users {
		entries, err := os.ReadDir(u.dir)
		if err != nil {
			return fmt.Errorf("sandbox clean-up: %w", err)
		}
		for _, e := range entries {
			if mine(e.Name()) {
				names[e.Name()] = filepath.Join(u.dir, e.Name())
			}
		}
	}
	for _, c := range s.cgroups {
		groups, _ := os.ReadDir(filepath.Join(s.cfg.CgroupRoot, c, "cccp-sandbox"))
		for _, g := range groups {
			if _, ok := names[g.Name()]; g.IsDir() && mine(g.Name()) && !ok {
				names[g.Name()] = ""
			}
		}
	}
	var errs []error
	for n, dir := range names {
		box := &Box{s: s, name: n, dir: dir, cg: map[string]string{}}
		for _, c := range s.cgroups {
			p := filepath.Join(s.cfg.CgroupRoot, c, "cccp-sandbox", n)
			if _, err := os.Stat(p); err == nil {
				box.cg[c] = p
			}
		}
		if err := box.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := s.sweep(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
