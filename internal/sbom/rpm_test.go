package sbom

import (
	"bytes"
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// The fixtures are made by testdata/rpm/make.sh with the real rpm;
// rpmdb.sqlite.qa is what `rpm -qa` said about the same database.
func rpmFixture(t testing.TB) ([]byte, []string) {
	t.Helper()
	db, err := os.ReadFile("testdata/rpm/rpmdb.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	qa, err := os.ReadFile("testdata/rpm/rpmdb.sqlite.qa")
	if err != nil {
		t.Fatal(err)
	}
	return db, strings.Split(strings.TrimSpace(string(qa)), "\n")
}

// asQA renders packages as the fixture's `rpm -qa --qf '%{NAME}
// %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}'` does.
func asQA(pkgs []found) []string {
	var out []string
	for _, p := range pkgs {
		v := p.Version
		if !strings.Contains(v, ":") {
			v = "0:" + v
		}
		out = append(out, p.Name+" "+v+" "+p.Arch)
	}
	slices.Sort(out)
	return out
}

func catalogFiles(t *testing.T, files []tarFile) []found {
	t.Helper()
	pkgs, _, err := catalog(layer(t, files))
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestRPMDatabases(t *testing.T) {
	db, qa := rpmFixture(t)
	ndb := ndbFile(t, db)
	bdb, err := os.ReadFile("testdata/rpm/Packages")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		data       []byte
	}{
		{"sqlite in /var/lib/rpm (CentOS Stream 9)", "var/lib/rpm/rpmdb.sqlite", db},
		{"sqlite in /usr/lib/sysimage/rpm (Fedora)", "usr/lib/sysimage/rpm/rpmdb.sqlite", db},
		{"ndb (SUSE)", "usr/lib/sysimage/rpm/Packages.db", ndb},
		{"Berkeley DB (CentOS 7)", "var/lib/rpm/Packages", bdb},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs := catalogFiles(t, []tarFile{{name: "etc/os-release", content: "NAME=\"CentOS Stream\"\nID=\"centos\"\n"},
				{name: tt.path, content: string(tt.data)}})
			if got := asQA(pkgs); !slices.Equal(got, qa) {
				t.Fatalf("packages differ from rpm -qa:\n got %q\nwant %q", got, qa)
			}
			i := slices.IndexFunc(pkgs, func(p found) bool { return p.Name == "cccp-hello" })
			want := "pkg:rpm/centos/cccp-hello@1.2.3-4.el9?arch=noarch&epoch=2&upstream=cccp-hello-1.2.3-4.el9.src.rpm"
			if p := pkgs[i]; p.PURL != want || p.Type != "rpm" || p.Location != "/"+tt.path {
				t.Errorf("cccp-hello = %+v, want purl %s", p, want)
			}
		})
	}
}

// TestRPMInSBOM: the packages reach the SPDX document with their purls.
func TestRPMInSBOM(t *testing.T) {
	db, _ := rpmFixture(t)
	pkgs := catalogFiles(t, []tarFile{{name: "etc/os-release", content: "ID=centos\n"}, {name: "var/lib/rpm/rpmdb.sqlite", content: string(db)}})
	d, err := name.NewDigest("registry.example/app@sha256:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := (&Generator{tool: "cccp-test", now: time.Now}).spdx(d, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Packages(doc)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(got, func(p Package) bool { return p.Name == "cccp-world" })
	if i < 0 || got[i].Type != "rpm" || got[i].Version != "0.9-1" {
		t.Errorf("cccp-world in the SBOM: %+v", got)
	}
}

// ndbFile writes an ndb Packages.db around the headers of the sqlite
// fixture, as rpm's ndb backend lays them out (Debian's rpm cannot write
// ndb): file header and slots on the first slot page, blobs after it.
func ndbFile(t testing.TB, sqlite []byte) []byte {
	t.Helper()
	blobs, err := rpmSQLiteBlobs(sqlite)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	out := make([]byte, ndbPage)
	le.PutUint32(out, ndbHeaderMagic)
	le.PutUint32(out[4:], 0)  // version
	le.PutUint32(out[8:], 1)  // generation
	le.PutUint32(out[12:], 1) // slot pages
	for i, b := range blobs {
		slot := out[32+16*i:]
		blk := len(out) / ndbBlock
		le.PutUint32(slot, ndbSlotMagic)
		le.PutUint32(slot[4:], uint32(i+1))
		le.PutUint32(slot[8:], uint32(blk))
		le.PutUint32(slot[12:], uint32((16+len(b)+ndbBlock-1)/ndbBlock))
		h := make([]byte, 16)
		le.PutUint32(h, ndbBlobMagic)
		le.PutUint32(h[4:], uint32(i+1))
		le.PutUint32(h[12:], uint32(len(b)))
		out = append(out, h...)
		out = append(out, b...)
		for len(out)%ndbBlock != 0 {
			out = append(out, 0)
		}
	}
	return out
}

// TestRPMHostileDatabases: a database is the image's to shape. A damaged
// or malicious one yields an error or fewer packages, never a panic or a
// loop, and the rest of the image is still described.
func TestRPMHostileDatabases(t *testing.T) {
	db, _ := rpmFixture(t)
	f, err := openSQLite(db)
	if err != nil {
		t.Fatal(err)
	}
	root, err := f.table("Packages")
	if err != nil {
		t.Fatal(err)
	}
	pageOff := func(n uint32) int { return int(n-1) * f.pageSize }
	cycle := bytes.Clone(db) // the root's right-most child is the root itself
	if cycle[pageOff(root)] != 0x05 {
		t.Fatalf("the fixture's Packages root is not an interior page (type %#x): make.sh should make more rows", cycle[pageOff(root)])
	}
	binary.BigEndian.PutUint32(cycle[pageOff(root)+8:], root)
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated", db[:len(db)/2]},
		{"header only", db[:100]},
		{"page cycle", cycle},
		{"not sqlite", []byte("SQLite format 2\x00 and then some")},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := rpmSQLiteBlobs(tt.data); err == nil {
				t.Error("read without an error")
			}
			pkgs := catalogFiles(t, []tarFile{{name: "var/lib/rpm/rpmdb.sqlite", content: string(tt.data)},
				{name: "var/lib/dpkg/status", content: "Package: tzdata\nStatus: install ok installed\nVersion: 2024a\nArchitecture: all\n\n"}})
			if !slices.ContainsFunc(pkgs, func(p found) bool { return p.Name == "tzdata" }) {
				t.Errorf("the rest of the image is not described: %+v", pkgs)
			}
		})
	}
}

func TestRPMHeaderBounds(t *testing.T) {
	db, _ := rpmFixture(t)
	blobs, err := rpmSQLiteBlobs(db)
	if err != nil {
		t.Fatal(err)
	}
	good := blobs[0]
	be := binary.BigEndian
	huge := bytes.Clone(good)
	be.PutUint32(huge, 1<<30)
	longData := bytes.Clone(good)
	be.PutUint32(longData[4:], uint32(len(good)))
	badOffsets := bytes.Clone(good)
	il := be.Uint32(good)
	for i := range il {
		be.PutUint32(badOffsets[8+i*16+8:], 0xfffffff0)
	}
	for _, tt := range []struct {
		name string
		b    []byte
	}{{"huge index", huge}, {"data past the end", longData}, {"offsets past the end", badOffsets}, {"short", good[:7]}} {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := rpmHeader(tt.b); err == nil {
				t.Errorf("read %+v without an error", p)
			}
		})
	}
}

// FuzzRPMDatabase: no input panics or hangs the readers.
func FuzzRPMDatabase(f *testing.F) {
	db, _ := rpmFixture(f)
	f.Add(db[:8192])
	f.Add(ndbFile(f, db)[:8192])
	f.Fuzz(func(t *testing.T, b []byte) {
		if blobs, err := rpmSQLiteBlobs(b); err == nil {
			rpmPackages(blobs, "x", "")
		}
		if blobs, err := ndbBlobs(b); err == nil {
			rpmPackages(blobs, "x", "")
		}
		rpmHeader(b)
	})
}

// TestBDBHostile: a Berkeley DB Packages whose overflow chain loops, or
// that is cut short, is refused or read in part, never looped over.
func TestBDBHostile(t *testing.T) {
	b, err := os.ReadFile("testdata/rpm/Packages")
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 4096
	// Find an overflow page (type 7) with a successor, and point the
	// successor back at it.
	loop := bytes.Clone(b)
	made := false
	for n := 1; (n+1)*pageSize <= len(loop) && !made; n++ {
		pg := loop[n*pageSize:]
		if pg[25] == 7 && binary.LittleEndian.Uint32(pg[16:]) != 0 {
			next := binary.LittleEndian.Uint32(pg[16:])
			binary.LittleEndian.PutUint32(loop[int(next)*pageSize+16:], uint32(n))
			made = true
		}
	}
	if !made {
		t.Fatal("the fixture has no chain of overflow pages: make.sh should make a longer header")
	}
	if _, err := bdbBlobs(loop); err == nil {
		t.Error("a looping overflow chain read without an error")
	}
	short, err := bdbBlobs(b[:len(b)/2])
	if err != nil && !strings.Contains(err.Error(), "out of the file") {
		t.Errorf("a file cut short: %v", err)
	}
	if all, _ := bdbBlobs(b); len(short) >= len(all) {
		t.Errorf("a file cut in half read %d headers of %d", len(short), len(all))
	}
}
