package sbom

import (
	"archive/tar"
	"bufio"
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// The catalogers read an image's squashed file system as one tar stream
// (whiteouts already applied) and never write it anywhere, so a hostile
// path or link in an image cannot reach cccp's files. What they know:
//
//	apk     /lib/apk/db/installed
//	dpkg    /var/lib/dpkg/status and /var/lib/dpkg/status.d/* (distroless)
//	go      module and dependency versions of Go binaries (debug/buildinfo)
//	busybox the BusyBox version string of a busybox binary
//	rpm     rpmdb.sqlite, ndb Packages.db and Berkeley DB Packages under
//	        /var/lib/rpm or /usr/lib/sysimage/rpm (rpm.go)

// maxScan bounds what is read of one file: a package database or an
// executable larger than this is not a package cccp can describe.
const maxScan = 128 << 20

// The image is the repository's to shape, and its SBOM is made inside
// cccp: what is kept while the layers are read is bounded in total, not
// only per file (thousands of zero-filled status.d files compress to
// nothing in a layer).
const (
	maxDatabases = 64 << 20 // the package databases kept until the walk ends, together
	maxPackages  = 100_000  // packages in one SBOM
	maxOSRelease = 64 << 10
)

// ErrTooLarge is returned for an image whose package databases or package
// count are beyond what cccp describes.
var ErrTooLarge = errors.New("sbom: image too large to describe")

// found is one package a cataloger found, with where.
type found struct {
	Package
	Namespace string // purl namespace (distribution, module path)
	Arch      string
	Location  string
	PURL      string
}

var busyboxVersion = regexp.MustCompile(`BusyBox v([0-9]+(?:\.[0-9]+)+)`)

// catalog reads the squashed file system tr and returns its packages and
// the distribution's /etc/os-release ID ("" when there is none).
func catalog(tr *tar.Reader) ([]found, string, error) {
	var out []found
	var osID string
	var apk, dpkg [][]byte
	type rpmDB struct {
		path string
		data []byte
	}
	var rpms []rpmDB
	kept := 0
	keep := func(r io.Reader, size int64) ([]byte, error) {
		if kept+int(size) > maxDatabases {
			return nil, fmt.Errorf("%w: package databases over %d bytes", ErrTooLarge, maxDatabases)
		}
		data, err := io.ReadAll(io.LimitReader(r, size))
		kept += len(data)
		return data, err
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", err
		}
		if h.Typeflag != tar.TypeReg || h.Size > maxScan {
			continue
		}
		p := path.Clean("/" + h.Name)
		switch {
		case p == "/etc/os-release" || p == "/usr/lib/os-release":
			data, err := io.ReadAll(io.LimitReader(tr, maxOSRelease))
			if err != nil {
				return nil, "", err
			}
			if id := osReleaseID(data); id != "" && (osID == "" || p == "/etc/os-release") {
				osID = id
			}
		case p == "/lib/apk/db/installed":
			data, err := keep(tr, h.Size)
			if err != nil {
				return nil, "", err
			}
			apk = append(apk, data)
		case p == "/var/lib/dpkg/status" || strings.HasPrefix(p, "/var/lib/dpkg/status.d/") && !strings.HasSuffix(p, ".md5sums"):
			data, err := keep(tr, h.Size)
			if err != nil {
				return nil, "", err
			}
			dpkg = append(dpkg, data)
		case rpmDatabases[p]:
			data, err := keep(tr, h.Size)
			if err != nil {
				return nil, "", err
			}
			rpms = append(rpms, rpmDB{p, data})
		case h.Mode&0o111 != 0:
			var magic [4]byte
			n, _ := io.ReadFull(tr, magic[:])
			if n < 4 || string(magic[:]) != "\x7fELF" {
				continue
			}
			rest, err := io.ReadAll(tr)
			if err != nil {
				return nil, "", err
			}
			out = append(out, binaryPackages(p, append(magic[:], rest...))...)
		}
		if len(out) > maxPackages {
			return nil, "", fmt.Errorf("%w: more than %d packages", ErrTooLarge, maxPackages)
		}
	}
	for _, data := range apk {
		out = append(out, apkPackages(data, osID)...)
	}
	for _, data := range dpkg {
		out = append(out, dpkgPackages(data, osID)...)
	}
	for _, db := range rpms {
		// A database that cannot be read (damaged, or a format not read
		// yet) costs its packages, not the SBOM of the rest of the image;
		// one that holds too many packages costs the SBOM, as elsewhere.
		blobs, err := rpmBlobs(db.path, db.data)
		if errors.Is(err, ErrTooLarge) {
			return nil, "", err
		}
		if err != nil {
			continue
		}
		pkgs, _ := rpmPackages(blobs, db.path, osID)
		out = append(out, pkgs...)
	}
	if len(out) > maxPackages {
		return nil, "", fmt.Errorf("%w: more than %d packages", ErrTooLarge, maxPackages)
	}
	return out, osID, nil
}

func osReleaseID(data []byte) string {
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ID="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// binaryPackages finds a Go binary's modules or a busybox.
func binaryPackages(p string, data []byte) []found {
	if bi, err := buildinfo.Read(bytes.NewReader(data)); err == nil {
		var out []found
		if bi.Main.Path != "" {
			out = append(out, goModule(p, bi.Main.Path, bi.Main.Version))
		}
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			out = append(out, goModule(p, d.Path, d.Version))
		}
		out = append(out, found{Package: Package{Name: "stdlib", Version: bi.GoVersion, Type: "golang"}, Location: p,
			PURL: "pkg:golang/stdlib@" + bi.GoVersion})
		return out
	}
	if m := busyboxVersion.FindSubmatch(data); m != nil {
		v := string(m[1])
		return []found{{Package: Package{Name: "busybox", Version: v, Type: "generic"}, Location: p, PURL: "pkg:generic/busybox@" + v}}
	}
	return nil
}

func goModule(p, mod, version string) found {
	purl := "pkg:golang/" + mod
	if version != "" && version != "(devel)" {
		purl += "@" + version
	}
	return found{Package: Package{Name: mod, Version: version, Type: "golang"}, Location: p, PURL: purl}
}

// paragraphs splits a control-file database into its records: lists of
// "Key: value" lines (apk's "K:value" too), blank-line separated.
func paragraphs(data []byte, sep string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = map[string]string{}
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // a continuation line (descriptions)
		}
		k, v, ok := strings.Cut(line, sep)
		if !ok {
			continue
		}
		if _, dup := cur[k]; !dup {
			cur[k] = strings.TrimSpace(v)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func apkPackages(data []byte, osID string) []found {
	ns := osID
	if ns == "" {
		ns = "alpine"
	}
	var out []found
	for _, r := range paragraphs(data, ":") {
		if r["P"] == "" {
			continue
		}
		purl := "pkg:apk/" + ns + "/" + r["P"] + "@" + r["V"]
		if r["A"] != "" {
			purl += "?arch=" + r["A"]
		}
		out = append(out, found{Package: Package{Name: r["P"], Version: r["V"], Type: "apk"}, Namespace: ns, Arch: r["A"],
			Location: "/lib/apk/db/installed", PURL: purl})
	}
	return out
}

func dpkgPackages(data []byte, osID string) []found {
	ns := osID
	if ns == "" {
		ns = "debian"
	}
	var out []found
	for _, r := range paragraphs(data, ": ") {
		if r["Package"] == "" {
			continue
		}
		// A package removed but not purged stays listed; it is not
		// installed.
		if st := r["Status"]; st != "" && !strings.HasSuffix(st, " installed") {
			continue
		}
		purl := "pkg:deb/" + ns + "/" + r["Package"] + "@" + r["Version"]
		if r["Architecture"] != "" {
			purl += "?arch=" + r["Architecture"]
		}
		out = append(out, found{Package: Package{Name: r["Package"], Version: r["Version"], Type: "deb"}, Namespace: ns,
			Arch: r["Architecture"], Location: "/var/lib/dpkg/status", PURL: purl})
	}
	return out
}

// rpmDatabases are the rpm databases read, by path in the image (rpm 4.16+
// moved them to /usr/lib/sysimage/rpm; /var/lib/rpm is then a link).
var rpmDatabases = map[string]bool{
	"/var/lib/rpm/rpmdb.sqlite":          true,
	"/usr/lib/sysimage/rpm/rpmdb.sqlite": true,
	"/var/lib/rpm/Packages.db":           true,
	"/usr/lib/sysimage/rpm/Packages.db":  true,
	"/var/lib/rpm/Packages":              true,
}

func rpmBlobs(p string, data []byte) ([][]byte, error) {
	switch {
	case strings.HasSuffix(p, ".sqlite"):
		return rpmSQLiteBlobs(data)
	case strings.HasSuffix(p, ".db"):
		return ndbBlobs(data)
	}
	return bdbBlobs(data)
}
