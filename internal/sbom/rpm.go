package sbom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RPM package databases, read without rpm and without an SQL engine: an
// image is the repository's to shape, so every offset, length and page
// number below is checked against the bytes that are there, and every
// walk is bounded.
//
//	sqlite  /var/lib/rpm/rpmdb.sqlite, /usr/lib/sysimage/rpm/rpmdb.sqlite
//	        (rpm >= 4.16: CentOS Stream 9, RHEL 9, Fedora): the table
//	        Packages(hnum INTEGER PRIMARY KEY, blob BLOB), one header per row
//	ndb     /var/lib/rpm/Packages.db, /usr/lib/sysimage/rpm/Packages.db
//	        (SUSE): rpm's own slot file of header blobs
//	bdb     /var/lib/rpm/Packages (rpm < 4.16: CentOS 7 and 8): a Berkeley DB
//	        hash database, one header per value
//
// Each row, blob or value is an rpm header (see rpmHeader).

// rpm header tags read (rpmtag.h).
const (
	rpmTagName      = 1000
	rpmTagVersion   = 1001
	rpmTagRelease   = 1002
	rpmTagEpoch     = 1003
	rpmTagVendor    = 1011
	rpmTagLicense   = 1014
	rpmTagArch      = 1022
	rpmTagSourceRPM = 1044
)

// rpm header value types.
const (
	rpmInt32       = 4
	rpmString      = 6
	rpmStringArray = 8
	rpmI18NString  = 9
)

// maxRPMHeaderEntries bounds one header's index (rpm's own limit is
// 0x0000ffff entries and 256 MiB of data).
const maxRPMHeaderEntries = 1 << 16

// maxRPMString is the longest string read from a header (a name, a
// license); a longer one is not read.
const maxRPMString = 64 << 10

var errRPMHeader = errors.New("not an rpm header")

// rpmPkg is what an rpm header says about its package.
type rpmPkg struct {
	Name, Version, Release, Arch, SourceRPM, License, Vendor string
	Epoch                                                    int // -1: none
}

// rpmHeader reads the tags above from an rpm header blob as the database
// stores it: index length il and data length dl (big-endian uint32), il
// index entries of 16 bytes (tag, type, offset, count), then dl bytes.
func rpmHeader(b []byte) (rpmPkg, error) {
	p := rpmPkg{Epoch: -1}
	if len(b) < 8 {
		return p, errRPMHeader
	}
	il, dl := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	if il == 0 || il > maxRPMHeaderEntries || uint64(8)+uint64(il)*16+uint64(dl) > uint64(len(b)) {
		return p, fmt.Errorf("%w: index of %d entries and %d bytes of data in %d bytes", errRPMHeader, il, dl, len(b))
	}
	data := b[8+il*16 : 8+il*16+dl]
	// Each wanted tag is tried once, at its first entry, and a string is
	// looked for in at most maxRPMString bytes: a hostile header of 65,536
	// entries of one tag over megabytes without a NUL costs no more than
	// a plain one.
	tried := map[uint32]bool{}
	for i := range il {
		e := b[8+i*16:]
		tag, typ := binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
		off, count := binary.BigEndian.Uint32(e[8:]), binary.BigEndian.Uint32(e[12:])
		if off >= uint32(len(data)) || count == 0 {
			continue
		}
		var dst *string
		switch tag {
		case rpmTagName:
			dst = &p.Name
		case rpmTagVersion:
			dst = &p.Version
		case rpmTagRelease:
			dst = &p.Release
		case rpmTagArch:
			dst = &p.Arch
		case rpmTagSourceRPM:
			dst = &p.SourceRPM
		case rpmTagLicense:
			dst = &p.License
		case rpmTagVendor:
			dst = &p.Vendor
		case rpmTagEpoch:
			if typ == rpmInt32 && off%4 == 0 && int(off)+4 <= len(data) {
				p.Epoch = int(binary.BigEndian.Uint32(data[off:]))
			}
			continue
		default:
			continue
		}
		if tried[tag] {
			continue
		}
		tried[tag] = true
		switch typ {
		case rpmString, rpmStringArray, rpmI18NString: // the first string
		default:
			continue
		}
		s := data[off:]
		end := bytes.IndexByte(s[:min(len(s), maxRPMString)], 0)
		if end < 0 {
			continue // no terminator within bounds: not a string we read
		}
		*dst = string(s[:end])
	}
	if p.Name == "" || p.Version == "" {
		return p, fmt.Errorf("%w: no name or version", errRPMHeader)
	}
	return p, nil
}

// rpmPackages turns the headers of one database into packages.
// gpg-pubkey entries are the keys rpm trusts, not software.
func rpmPackages(blobs [][]byte, location, osID string) ([]found, error) {
	var out []found
	var bad int
	for _, b := range blobs {
		p, err := rpmHeader(b)
		if err != nil {
			bad++
			continue
		}
		if p.Name == "gpg-pubkey" {
			continue
		}
		out = append(out, rpmFound(p, location, osID))
	}
	if bad > 0 && len(out) == 0 {
		return nil, fmt.Errorf("%s: %d records, none an rpm header", location, bad)
	}
	return out, nil
}

func rpmFound(p rpmPkg, location, osID string) found {
	version := p.Version + "-" + p.Release
	if p.Release == "" {
		version = p.Version
	}
	shown := version
	if p.Epoch > 0 {
		shown = strconv.Itoa(p.Epoch) + ":" + version
	}
	purl := "pkg:rpm/"
	if osID != "" {
		purl += purlEscape(osID) + "/"
	}
	purl += purlEscape(p.Name) + "@" + purlEscape(version)
	var q []string
	if p.Arch != "" {
		q = append(q, "arch="+purlEscape(p.Arch))
	}
	if p.Epoch > 0 {
		q = append(q, "epoch="+strconv.Itoa(p.Epoch))
	}
	if p.SourceRPM != "" && p.SourceRPM != "(none)" {
		q = append(q, "upstream="+purlEscape(p.SourceRPM))
	}
	if len(q) > 0 {
		purl += "?" + strings.Join(q, "&")
	}
	return found{Package: Package{Name: p.Name, Version: shown, Type: "rpm"}, Namespace: osID, Arch: p.Arch,
		Location: location, PURL: purl}
}

// purlEscape percent-encodes what a purl segment may not hold as is.
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte(".-_~+", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// ---- ndb (rpm's own format, SUSE)

const (
	ndbHeaderMagic = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic   = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic   = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	ndbPage        = 4096
	ndbBlock       = 16
)

// ndbBlobs reads the header blobs of an ndb Packages.db: a 32-byte file
// header (magic, version, generation, slot pages), slots of 16 bytes
// (magic, package index, block offset, block count) filling the slot
// pages, and each blob at its block offset behind a 16-byte blob header
// (magic, package index, checksum, length). Little-endian.
func ndbBlobs(b []byte) ([][]byte, error) {
	le := binary.LittleEndian
	if len(b) < 32 || le.Uint32(b) != ndbHeaderMagic {
		return nil, errors.New("not an ndb Packages.db")
	}
	slotPages := uint64(le.Uint32(b[12:]))
	slotEnd := slotPages * ndbPage
	if slotPages == 0 || slotEnd > uint64(len(b)) {
		return nil, fmt.Errorf("ndb: %d slot pages in %d bytes", slotPages, len(b))
	}
	var out [][]byte
	blocks := map[uint64]bool{}                           // a blob is read for one slot only
	for off := uint64(32); off+16 <= slotEnd; off += 16 { // the file header takes the first two slots
		s := b[off:]
		if le.Uint32(s) != ndbSlotMagic {
			continue
		}
		idx, blk := le.Uint32(s[4:]), uint64(le.Uint32(s[8:]))
		if idx == 0 || blk == 0 {
			continue // a free slot
		}
		if blocks[blk] {
			return nil, fmt.Errorf("ndb: block %d is the blob of two slots", blk)
		}
		blocks[blk] = true
		start := blk * ndbBlock
		if start+16 > uint64(len(b)) {
			return nil, fmt.Errorf("ndb: slot of package %d points past the end", idx)
		}
		h := b[start:]
		n := uint64(le.Uint32(h[12:]))
		if le.Uint32(h) != ndbBlobMagic || le.Uint32(h[4:]) != idx || start+16+n > uint64(len(b)) {
			return nil, fmt.Errorf("ndb: bad blob of package %d at block %d", idx, blk)
		}
		out = append(out, b[start+16:start+16+n])
		if len(out) > maxPackages {
			return nil, fmt.Errorf("%w: more than %d packages", ErrTooLarge, maxPackages)
		}
	}
	return out, nil
}

// ---- Berkeley DB (rpm < 4.16: CentOS 7 and 8)

const (
	bdbHashMagic    = 0x061561
	bdbHeaderSize   = 26 // every page's header
	bdbHashUnsorted = 2  // hash page type before Berkeley DB 4.6 (CentOS 5)
	bdbHash         = 13 // hash page type
	bdbHOffPage     = 3  // an item stored on overflow pages
)

// bdbBlobs reads the values of a Berkeley DB hash database, rpm's
// Packages: page 0 is the metadata (magic at 12, page size at 20, last
// page at 32); each hash page holds key/value item offsets after its
// 26-byte header (entry count at 20, type at 25), and rpm's headers are
// large, so each value is an off-page item (type, 3 unused bytes, first
// overflow page, length) whose overflow pages chain through next-page
// (16) with their used length at 22. Byte order is the writer's: the
// magic tells which.
func bdbBlobs(b []byte) ([][]byte, error) {
	if len(b) < 512 {
		return nil, errors.New("not a Berkeley DB file")
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch {
	case binary.LittleEndian.Uint32(b[12:]) == bdbHashMagic:
	case binary.BigEndian.Uint32(b[12:]) == bdbHashMagic:
		bo = binary.BigEndian
	default:
		return nil, errors.New("not a Berkeley DB hash database")
	}
	pageSize := uint64(bo.Uint32(b[20:]))
	if pageSize < 512 || pageSize > 64<<10 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("bdb: page size %d", pageSize)
	}
	last := uint64(bo.Uint32(b[32:]))
	pages := uint64(len(b)) / pageSize
	if last >= pages {
		last = pages - 1 // a file cut short: read what is there
	}
	page := func(n uint64) []byte { return b[n*pageSize : (n+1)*pageSize] }
	var out [][]byte
	used := map[uint64]bool{} // overflow pages already read: a chain never loops
	for n := uint64(1); n <= last; n++ {
		pg := page(n)
		if t := pg[25]; t != bdbHash && t != bdbHashUnsorted {
			continue
		}
		entries := uint64(bo.Uint16(pg[20:]))
		if bdbHeaderSize+2*entries > pageSize {
			return nil, fmt.Errorf("bdb: page %d: %d entries do not fit", n, entries)
		}
		for i := uint64(1); i < entries; i += 2 { // key, value, key, value, ...
			off := uint64(bo.Uint16(pg[bdbHeaderSize+2*i:]))
			if off+12 > pageSize || pg[off] != bdbHOffPage {
				continue
			}
			next, size := uint64(bo.Uint32(pg[off+4:])), uint64(bo.Uint32(pg[off+8:]))
			if size > uint64(len(b)) {
				return nil, fmt.Errorf("bdb: page %d: a value of %d bytes in a file of %d", n, size, len(b))
			}
			// Grown as the chain gives bytes: a declared size alone
			// reserves nothing, and a chain that ends short is no value.
			v := make([]byte, 0, min(size, pageSize))
			for next != 0 && uint64(len(v)) < size {
				if next >= pages || used[next] {
					return nil, fmt.Errorf("bdb: overflow page %d out of the file or read twice", next)
				}
				used[next] = true
				op := page(next)
				chunk := op[bdbHeaderSize:]
				if hf := uint64(bo.Uint16(op[22:])); hf <= pageSize-bdbHeaderSize {
					chunk = chunk[:hf] // the used length of an overflow page
				}
				if rest := size - uint64(len(v)); uint64(len(chunk)) > rest {
					chunk = chunk[:rest]
				}
				v = append(v, chunk...)
				next = uint64(bo.Uint32(op[16:]))
			}
			if uint64(len(v)) != size {
				continue
			}
			out = append(out, v)
			if len(out) > maxPackages {
				return nil, fmt.Errorf("%w: more than %d packages", ErrTooLarge, maxPackages)
			}
		}
	}
	return out, nil
}
