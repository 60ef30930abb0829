// Package jsonpick cuts a webhook's JSON object down to the top-level
// members a decoder will read, before the decoder sees it.
//
// A 25 KB GitHub push is mostly its commits list, which cccp does not read;
// a full decoder still tokenizes and validates every byte of it, which was
// the largest cost of routing a delivery. Pick walks the object once,
// finding each member's end by structure alone (strings are skipped with
// bytes.IndexByte), and copies out the members whose names the decoder
// could match. The result goes to the same decoder as before, which
// validates everything it reads.
//
// Names are matched as json v2's MatchCaseInsensitiveNames matches them
// (ASCII case folded, '_' and '-' ignored), and a name with an escape or a
// non-ASCII byte is always kept, so Pick keeps a superset of what the
// decoder would use. Members are kept in their order, so duplicate names
// resolve as they did. What Pick does not check is the inside of members it
// drops: an object whose only malformed part is a dropped member is read,
// where the whole-body decoder refused it. Webhook bodies are
// authenticated before they are parsed.
package jsonpick

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// Picker keeps the members of a fixed set of names, and within a kept
// member's object the members of its own set. It is safe for concurrent
// use.
type Picker struct {
	names map[string]*Picker // folded name → the picker of its object (nil: kept whole)
	bufs  sync.Pool          // *[]byte for Decode
}

// maxPooled is the largest buffer Decode keeps for reuse.
const maxPooled = 1 << 20

// Decode calls decode with body cut down to the members p keeps, or with
// body itself when Pick refuses it (so the decoder gives its own error).
// The cut body lives in a buffer reused once decode returns: decode must
// copy what it keeps, as the JSON decoders do. A nil Picker keeps every
// member: decode gets body.
func (p *Picker) Decode(body []byte, decode func([]byte) error) error {
	if p == nil {
		return decode(body)
	}
	bp, _ := p.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	cut, err := p.Pick((*bp)[:0], body)
	if err != nil {
		err = decode(body)
	} else {
		err = decode(cut)
	}
	if cap(cut) <= maxPooled {
		*bp = cut[:0]
		p.bufs.Put(bp)
	}
	return err
}

// New returns a Picker of names, each kept whole.
func New(names ...string) *Picker {
	p := &Picker{names: make(map[string]*Picker, len(names))}
	for _, n := range names {
		p.names[string(fold(nil, []byte(n)))] = nil
	}
	return p
}

// ForStruct returns the Picker of v's type, a struct or a pointer to one
// (nil, which keeps everything, when the type is kept whole):
// the JSON names of its fields (the name in a field's json tag, or the
// field's own name without one, and the fields of embedded structs), and
// for a field of struct type the Picker of that type. A struct that reads
// members by other rules (a field tagged inline or unknown) is kept whole,
// and so is any type with its own JSON or text unmarshaling.
func ForStruct(v any) *Picker {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return forType(t, map[reflect.Type]bool{}) // nil: kept whole
}

// forType is ForStruct's walk; nil means keep the value whole. seen holds
// the types being walked, so a recursive type is kept whole where it
// recurs.
func forType(t reflect.Type, seen map[reflect.Type]bool) *Picker {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || unmarshalsItself(t) {
		return nil
	}
	seen[t] = true
	defer delete(seen, t)
	p := &Picker{names: map[string]*Picker{}}
	var walk func(t reflect.Type) bool
	walk = func(t reflect.Type) bool {
		for f := range t.Fields() {
			tag, hasTag := f.Tag.Lookup("json")
			name, opts, _ := strings.Cut(tag, ",")
			if strings.Contains(","+opts+",", ",inline,") || strings.Contains(","+opts+",", ",unknown,") {
				return false
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case tag == "-":
				continue
			case strings.HasPrefix(name, "'") || !isASCII(name):
				return false // json v2's quoted names, Unicode folding: not second-guessed
			case f.Anonymous && name == "" && ft.Kind() == reflect.Struct:
				if seen[ft] {
					return false // a type that embeds itself
				}
				seen[ft] = true
				ok := walk(ft)
				delete(seen, ft)
				if !ok {
					return false
				}
				continue
			case name == "":
				name = f.Name
			}
			if !f.IsExported() && !hasTag {
				continue
			}
			key := string(fold(nil, []byte(name)))
			child := forType(f.Type, seen)
			if prev, dup := p.names[key]; dup && prev != child {
				child = nil // two fields under one folded name: keep it whole
			}
			p.names[key] = child
		}
		return true
	}
	if !walk(t) {
		return nil
	}
	return p
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// unmarshalsItself reports whether *t has its own JSON or text
// unmarshaling (json v1 or v2 methods), which Pick must not second-guess.
func unmarshalsItself(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	for _, m := range []string{"UnmarshalJSON", "UnmarshalJSONFrom", "UnmarshalText"} {
		if _, ok := pt.MethodByName(m); ok {
			return true
		}
	}
	return false
}

// ErrSyntax is wrapped by Pick's errors: src is not one JSON object as far
// as Pick reads it. A caller then decodes src whole, for the decoder's own
// error.
var ErrSyntax = errors.New("jsonpick: not a JSON object")

func syntaxErr(at int, what string) error {
	return fmt.Errorf("%w: %s at byte %d", ErrSyntax, what, at)
}

// Pick appends to dst the object in src cut down to the members p keeps,
// in their order, and returns it. A nil Picker keeps src whole.
func (p *Picker) Pick(dst, src []byte) ([]byte, error) {
	if p == nil {
		return append(dst, src...), nil
	}
	i := skipSpace(src, 0)
	dst, i, err := p.pickObject(dst, src, i, 0)
	if err != nil {
		return dst, err
	}
	if i = skipSpace(src, i); i != len(src) {
		return dst, syntaxErr(i, "data after the object")
	}
	return dst, nil
}

// pickObject appends the cut of the object starting at src[i] and returns
// the index after it; depth is the object's nesting.
func (p *Picker) pickObject(dst, src []byte, i, depth int) ([]byte, int, error) {
	if i >= len(src) || src[i] != '{' {
		return dst, i, syntaxErr(i, "want '{'")
	}
	if depth >= maxDepth {
		return dst, i, syntaxErr(i, "nested too deep")
	}
	dst = append(dst, '{')
	first := true
	i = skipSpace(src, i+1)
	if i < len(src) && src[i] == '}' {
		return append(dst, '}'), i + 1, nil
	}
	var fbuf [64]byte
	for {
		if i >= len(src) || src[i] != '"' {
			return dst, i, syntaxErr(i, "want a member name")
		}
		nameStart := i
		end, err := skipString(src, i)
		if err != nil {
			return dst, i, err
		}
		name := src[nameStart+1 : end-1]
		i = skipSpace(src, end)
		if i >= len(src) || src[i] != ':' {
			return dst, i, syntaxErr(i, "want ':'")
		}
		i = skipSpace(src, i+1)
		keep, child := p.keeps(fbuf[:0], name)
		if keep {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, src[nameStart:end]...)
			dst = append(dst, ':')
		}
		switch {
		case keep && child != nil && i < len(src) && src[i] == '{':
			if dst, i, err = child.pickObject(dst, src, i, depth+1); err != nil {
				return dst, i, err
			}
		default:
			valStart := i
			if i, err = skipValue(src, i, depth+1); err != nil {
				return dst, i, err
			}
			if keep {
				dst = append(dst, src[valStart:i]...)
			}
		}
		i = skipSpace(src, i)
		if i < len(src) && src[i] == ',' {
			i = skipSpace(src, i+1)
			continue
		}
		if i < len(src) && src[i] == '}' {
			return append(dst, '}'), i + 1, nil
		}
		return dst, i, syntaxErr(i, "want ',' or '}'")
	}
}

// keeps reports whether the member named name (raw, between its quotes)
// is kept, and the Picker of its object, if any.
func (p *Picker) keeps(buf, name []byte) (bool, *Picker) {
	for _, c := range name {
		if c == '\\' || c >= 0x80 {
			return true, nil // escapes and non-ASCII: the decoder decides, on all of it
		}
	}
	child, ok := p.names[string(fold(buf, name))]
	return ok, child
}

// fold is json v2's name folding for ASCII: upper case, without '_' and '-'.
func fold(dst, name []byte) []byte {
	for _, c := range name {
		switch {
		case c == '_' || c == '-':
		case 'a' <= c && c <= 'z':
			dst = append(dst, c-('a'-'A'))
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func skipSpace(src []byte, i int) int {
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at src[i] ('"').
func skipString(src []byte, i int) (int, error) {
	k := i + 1
	for {
		q := bytes.IndexByte(src[k:], '"')
		if q < 0 {
			return 0, syntaxErr(i, "unterminated string")
		}
		q += k
		n := 0 // backslashes just before the quote
		for j := q - 1; j > i && src[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		k = q + 1
	}
}

// maxDepth bounds the nesting Pick follows, as decoders do.
const maxDepth = 10000

// skipValue returns the index after the value starting at src[i].
func skipValue(src []byte, i, depth int) (int, error) {
	if i >= len(src) {
		return 0, syntaxErr(i, "want a value")
	}
	switch src[i] {
	case '"':
		return skipString(src, i)
	case '{', '[':
		return skipContainer(src, i, depth)
	}
	start := i
scan:
	for ; i < len(src); i++ {
		switch src[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			break scan
		case '"', '{', '[', ':':
			return 0, syntaxErr(i, "unexpected character in a literal")
		}
	}
	if i == start {
		return 0, syntaxErr(i, "want a value")
	}
	return i, nil
}

// skipContainer returns the index after the object or array starting at
// src[i], checking that brackets pair up.
func skipContainer(src []byte, i, depth int) (int, error) {
	var stackBuf [64]byte
	stack := stackBuf[:0]
	for i < len(src) {
		switch c := src[i]; c {
		case '"':
			end, err := skipString(src, i)
			if err != nil {
				return 0, err
			}
			i = end
			continue
		case '{', '[':
			if depth+len(stack) >= maxDepth {
				return 0, syntaxErr(i, "nested too deep")
			}
			stack = append(stack, c)
		case '}', ']':
			open := byte('{')
			if c == ']' {
				open = '['
			}
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return 0, syntaxErr(i, "unbalanced brackets")
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return i + 1, nil
			}
		}
		i++
	}
	return 0, syntaxErr(i, "unterminated object or array")
}
