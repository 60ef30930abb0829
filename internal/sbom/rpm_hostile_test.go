package sbom

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// header builds an rpm header blob of the given (tag, string) entries.
func header(entries ...any) []byte {
	be := binary.BigEndian
	var index, data []byte
	for i := 0; i < len(entries); i += 2 {
		e := make([]byte, 16)
		be.PutUint32(e, entries[i].(uint32))
		be.PutUint32(e[4:], rpmString)
		be.PutUint32(e[8:], uint32(len(data)))
		be.PutUint32(e[12:], 1)
		index = append(index, e...)
		data = append(append(data, entries[i+1].(string)...), 0)
	}
	b := make([]byte, 8)
	be.PutUint32(b, uint32(len(index)/16))
	be.PutUint32(b[4:], uint32(len(data)))
	return append(append(b, index...), data...)
}

// A header's strings cost what a plain header costs whatever its author
// repeats: a tag is read at its first entry only, and a string longer than
// maxRPMString is not read (65,536 entries of one tag over megabytes
// without a NUL would otherwise scan the data 65,536 times).
func TestRPMHeaderReadsEachTagOnce(t *testing.T) {
	p, err := rpmHeader(header(uint32(rpmTagName), "first", uint32(rpmTagName), "second", uint32(rpmTagVersion), "1.0"))
	if err != nil || p.Name != "first" {
		t.Errorf("repeated Name: %+v, %v; want the first entry's", p, err)
	}
	long := string(bytes.Repeat([]byte("a"), maxRPMString+1))
	if p, err := rpmHeader(header(uint32(rpmTagName), long, uint32(rpmTagVersion), "1.0")); err == nil {
		t.Errorf("a name of %d bytes was read: %d bytes", len(long), len(p.Name))
	}
}

// An ndb slot table whose slots share one blob is refused: each would
// have the same header parsed again, up to the package limit.
func TestNDBSharedBlob(t *testing.T) {
	db, _ := rpmFixture(t)
	nd := ndbFile(t, db)
	dup := bytes.Clone(nd)
	copy(dup[32+16:32+32], dup[32:32+16]) // slot 2 becomes slot 1 again
	if blobs, err := ndbBlobs(dup); err == nil {
		t.Errorf("two slots of one blob read as %d blobs without an error", len(blobs))
	}
}

// A Berkeley DB value whose overflow chain gives fewer bytes than it
// declares is not a value: it is skipped, and its declared size reserves
// no memory.
func TestBDBShortChainIsSkipped(t *testing.T) {
	b, err := os.ReadFile("testdata/rpm/Packages")
	if err != nil {
		t.Fatal(err)
	}
	all, err := bdbBlobs(b)
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 4096
	bo := binary.LittleEndian
	short := bytes.Clone(b)
	made := false
	for n := 1; (n+1)*pageSize <= len(short) && !made; n++ {
		pg := short[n*pageSize:]
		if t := pg[25]; t != bdbHash && t != bdbHashUnsorted {
			continue
		}
		entries := int(bo.Uint16(pg[20:]))
		for i := 1; i < entries && !made; i += 2 {
			off := int(bo.Uint16(pg[bdbHeaderSize+2*i:]))
			if off+12 <= pageSize && pg[off] == bdbHOffPage {
				bo.PutUint32(pg[off+8:], uint32(len(b))) // declares the whole file
				made = true
			}
		}
	}
	if !made {
		t.Fatal("the fixture has no value on overflow pages")
	}
	got, err := bdbBlobs(short)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all)-1 {
		t.Errorf("read %d values of %d; want the short one skipped", len(got), len(all))
	}
}
