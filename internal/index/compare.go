package index

// Compare tells what head changes against base, entry by entry: entries of
// head that base lacks or holds with other content (changed), and entries
// of base that head no longer has (removed). Entries are matched by Key;
// a move within or between files is not a change.
func Compare(base, head *Index) (changed, removed []*Entry) {
	before := map[string]string{}
	if base != nil {
		for _, e := range base.Entries {
			before[e.Key()] = fingerprint(e)
		}
	}
	now := map[string]bool{}
	for _, e := range head.Entries {
		now[e.Key()] = true
		if fp, ok := before[e.Key()]; !ok || fp != fingerprint(e) {
			changed = append(changed, e)
		}
	}
	if base != nil {
		for _, e := range base.Entries {
			if !now[e.Key()] {
				removed = append(removed, e)
			}
		}
	}
	return changed, removed
}

// FindingsOf returns the findings that lie within entry e: in its file,
// from its first line up to the next entry of that file.
func FindingsOf(idx *Index, e *Entry, fs []Finding) []Finding {
	end := 0
	for _, o := range idx.Entries {
		if o.Pos.File == e.Pos.File && o.Pos.Line > e.Pos.Line && (end == 0 || o.Pos.Line < end) {
			end = o.Pos.Line
		}
	}
	var out []Finding
	for _, f := range fs {
		if f.Pos.File == e.Pos.File && f.Pos.Line >= e.Pos.Line && (end == 0 || f.Pos.Line < end) {
			out = append(out, f)
		}
	}
	return out
}
