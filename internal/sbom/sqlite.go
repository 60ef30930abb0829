package sbom

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// A read-only reader of one table of an SQLite database file, just enough
// for rpmdb.sqlite: the schema table on page 1 names the table's root
// page; its table b-tree (interior pages 0x05, leaf pages 0x0d) holds one
// record per row, spilling to overflow pages when long. The format is
// https://www.sqlite.org/fileformat.html. A hostile file gets errors, not
// loops: each page is visited at most once, and depth and record sizes are
// bounded by the file's own size.

var errNotSQLite = errors.New("not an SQLite database")

type sqliteFile struct {
	b        []byte
	pageSize int
	usable   int
}

func openSQLite(b []byte) (*sqliteFile, error) {
	if len(b) < 100 || string(b[:16]) != "SQLite format 3\x00" {
		return nil, errNotSQLite
	}
	ps := int(binary.BigEndian.Uint16(b[16:]))
	if ps == 1 {
		ps = 65536
	}
	if ps < 512 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("sqlite: page size %d", ps)
	}
	usable := ps - int(b[20])
	if usable < 480 {
		return nil, fmt.Errorf("sqlite: usable page size %d", usable)
	}
	if enc := binary.BigEndian.Uint32(b[56:]); enc > 1 {
		return nil, fmt.Errorf("sqlite: text encoding %d is not UTF-8", enc)
	}
	return &sqliteFile{b: b, pageSize: ps, usable: usable}, nil
}

func (f *sqliteFile) page(n uint32) ([]byte, error) {
	if n == 0 {
		return nil, errors.New("sqlite: page 0")
	}
	start := uint64(n-1) * uint64(f.pageSize)
	if start+uint64(f.pageSize) > uint64(len(f.b)) {
		return nil, fmt.Errorf("sqlite: page %d past the end of the file", n)
	}
	return f.b[start : start+uint64(f.pageSize)], nil
}

// rows calls fn with the record (its column values) of every row of the
// table b-tree rooted at page root, in rowid order.
func (f *sqliteFile) rows(root uint32, fn func(cols []any) error) error {
	seen := map[uint32]bool{}
	// Every payload byte is in the file once: cell pointers that repeat one
	// cell would copy it again for each, so the payloads read may add up to
	// the file's size and no more.
	budget := len(f.b)
	var walk func(n uint32, depth int) error
	walk = func(n uint32, depth int) error {
		if seen[n] || depth > 64 {
			return fmt.Errorf("sqlite: page %d visited twice (a cycle)", n)
		}
		seen[n] = true
		pg, err := f.page(n)
		if err != nil {
			return err
		}
		hdr := 0
		if n == 1 {
			hdr = 100
		}
		if hdr+8 > len(pg) {
			return fmt.Errorf("sqlite: page %d too short", n)
		}
		typ := pg[hdr]
		cells := int(binary.BigEndian.Uint16(pg[hdr+3:]))
		ptrs := hdr + 8
		if typ == 0x05 {
			ptrs = hdr + 12
		}
		if ptrs+2*cells > len(pg) {
			return fmt.Errorf("sqlite: page %d: %d cells do not fit", n, cells)
		}
		for i := range cells {
			off := int(binary.BigEndian.Uint16(pg[ptrs+2*i:]))
			if off >= f.usable || off < ptrs {
				return fmt.Errorf("sqlite: page %d: cell %d at %d", n, i, off)
			}
			cell := pg[off:f.usable]
			switch typ {
			case 0x05:
				if len(cell) < 4 {
					return fmt.Errorf("sqlite: page %d: short cell", n)
				}
				if err := walk(binary.BigEndian.Uint32(cell), depth+1); err != nil {
					return err
				}
			case 0x0d:
				payload, err := f.leafPayload(cell, seen)
				if err != nil {
					return fmt.Errorf("sqlite: page %d cell %d: %w", n, i, err)
				}
				if budget -= len(payload); budget < 0 {
					return fmt.Errorf("sqlite: page %d cell %d: the rows add up to more than the file", n, i)
				}
				cols, err := sqliteRecord(payload)
				if err != nil {
					return fmt.Errorf("sqlite: page %d cell %d: %w", n, i, err)
				}
				if err := fn(cols); err != nil {
					return err
				}
			default:
				return fmt.Errorf("sqlite: page %d is not a table page (type %#x)", n, typ)
			}
		}
		if typ == 0x05 {
			return walk(binary.BigEndian.Uint32(pg[hdr+8:]), depth+1)
		}
		return nil
	}
	return walk(root, 0)
}

// leafPayload is the payload of a table leaf cell: its local part and the
// chain of overflow pages after it.
func (f *sqliteFile) leafPayload(cell []byte, seen map[uint32]bool) ([]byte, error) {
	size, n := sqliteVarint(cell)
	if n == 0 {
		return nil, errors.New("bad payload size")
	}
	cell = cell[n:]
	if _, n = sqliteVarint(cell); n == 0 { // rowid
		return nil, errors.New("bad rowid")
	}
	cell = cell[n:]
	if size > uint64(len(f.b)) {
		return nil, fmt.Errorf("payload of %d bytes in a file of %d", size, len(f.b))
	}
	u := uint64(f.usable)
	x := u - 35
	local := size
	if size > x {
		m := (u-12)*32/255 - 23
		k := m + (size-m)%(u-4)
		local = m
		if k <= x {
			local = k
		}
	}
	if uint64(len(cell)) < local || (local < size && uint64(len(cell)) < local+4) {
		return nil, errors.New("payload overruns its page")
	}
	out := make([]byte, 0, min(size, local+u)) // grown by the overflow pages that exist
	out = append(out, cell[:local]...)
	if local == size {
		return out, nil
	}
	next := binary.BigEndian.Uint32(cell[local:])
	for uint64(len(out)) < size {
		if seen[next] {
			return nil, fmt.Errorf("overflow page %d visited twice", next)
		}
		seen[next] = true
		pg, err := f.page(next)
		if err != nil {
			return nil, err
		}
		chunk := pg[4:f.usable]
		if rest := size - uint64(len(out)); uint64(len(chunk)) > rest {
			chunk = chunk[:rest]
		}
		out = append(out, chunk...)
		next = binary.BigEndian.Uint32(pg)
	}
	return out, nil
}

// sqliteRecord decodes a record: a header of serial types, then the values
// (int64, float64 as its bits, []byte for blobs, string for text, nil).
func sqliteRecord(p []byte) ([]any, error) {
	hlen, n := sqliteVarint(p)
	if n == 0 || hlen > uint64(len(p)) || hlen < uint64(n) {
		return nil, errors.New("bad record header")
	}
	types := p[n:hlen]
	body := p[hlen:]
	var cols []any
	for len(types) > 0 {
		t, n := sqliteVarint(types)
		if n == 0 {
			return nil, errors.New("bad serial type")
		}
		types = types[n:]
		var size uint64
		switch {
		case t == 0, t == 8, t == 9:
		case t >= 1 && t <= 4:
			size = t
		case t == 5:
			size = 6
		case t == 6, t == 7:
			size = 8
		case t >= 12:
			size = (t - 12) / 2
		default:
			return nil, fmt.Errorf("reserved serial type %d", t)
		}
		if size > uint64(len(body)) {
			return nil, errors.New("record value overruns the record")
		}
		v := body[:size]
		body = body[size:]
		switch {
		case t == 0:
			cols = append(cols, nil)
		case t == 8, t == 9:
			cols = append(cols, int64(t-8))
		case t <= 7:
			var x int64
			if len(v) > 0 && v[0]&0x80 != 0 {
				x = -1
			}
			for _, c := range v {
				x = x<<8 | int64(c)
			}
			cols = append(cols, x)
		case t%2 == 0:
			cols = append(cols, v)
		default:
			cols = append(cols, string(v))
		}
	}
	return cols, nil
}

// sqliteVarint reads SQLite's big-endian varint (1 to 9 bytes); n is 0
// when b ends first.
func sqliteVarint(b []byte) (v uint64, n int) {
	for i := 0; i < 9; i++ {
		if i >= len(b) {
			return 0, 0
		}
		if i == 8 {
			return v<<8 | uint64(b[i]), 9
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return v, 9
}

// table returns the root page of table name (from the schema on page 1)
// and the position of column col in its CREATE TABLE.
func (f *sqliteFile) table(name string) (uint32, error) {
	var root uint32
	err := f.rows(1, func(cols []any) error {
		if len(cols) < 4 {
			return nil
		}
		typ, _ := cols[0].(string)
		n, _ := cols[1].(string)
		r, _ := cols[3].(int64)
		if typ == "table" && strings.EqualFold(n, name) && r > 0 && r <= 1<<31 {
			root = uint32(r)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if root == 0 {
		return 0, fmt.Errorf("sqlite: no table %s", name)
	}
	return root, nil
}

// rpmSQLiteBlobs returns the header blobs of rpmdb.sqlite's Packages
// table: the second column (the first, hnum, is the rowid and stored as
// NULL).
func rpmSQLiteBlobs(b []byte) ([][]byte, error) {
	f, err := openSQLite(b)
	if err != nil {
		return nil, err
	}
	root, err := f.table("Packages")
	if err != nil {
		return nil, err
	}
	var out [][]byte
	err = f.rows(root, func(cols []any) error {
		if len(cols) < 2 {
			return nil
		}
		if blob, ok := cols[1].([]byte); ok {
			out = append(out, blob)
		}
		if len(out) > maxPackages {
			return fmt.Errorf("%w: more than %d packages", ErrTooLarge, maxPackages)
		}
		return nil
	})
	return out, err
}
