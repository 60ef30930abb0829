package index

// Compare tells what head changes against base, entry by entry: entries of
// head that base lacks or holds with other content (changed), and entries
// of base that head no longer has (removed). Entries are matched by Key;
// a move within or between files is not a change.
func Compare(base, head []*Entry) (changed, removed []*Entry) {
	before := map[string]string{}
	for _, e := range base {
		before[e.Key()] = fingerprint(e)
	}
	now := map[string]bool{}
	for _, e := range head {
		now[e.Key()] = true
		if fp, ok := before[e.Key()]; !ok || fp != fingerprint(e) {
			changed = append(changed, e)
		}
	}
	for _, e := range base {
		if !now[e.Key()] {
			removed = append(removed, e)
		}
	}
	return changed, removed
}
