package origin

// Set is a compiled allowlist. Match reports the first pattern that
// matches, so the index is stable and bounded by the number of patterns,
// which makes it a safe metrics label.
//
// A Set is immutable after NewSet and safe for simultaneous use by
// multiple goroutines. A nil or empty Set matches nothing.
type Set struct {
	patterns []Pattern
	exact    map[exactKey]int // canonical origin -> index of the first exact pattern for it
	wild     []wildEntry      // wildcard patterns in index order
}

type exactKey struct {
	scheme, host string
	port         uint16
}

type wildEntry struct {
	index int
	p     Pattern
}

// NewSet compiles ps into a Set. The Set keeps its own copy of ps.
// Duplicate patterns are allowed (the first one wins in Match); zero
// Patterns keep their index but never match.
func NewSet(ps []Pattern) *Set {
	s := &Set{patterns: append([]Pattern(nil), ps...)}
	for i, p := range s.patterns {
		switch {
		case p.scheme == "":
		case p.wildcard:
			s.wild = append(s.wild, wildEntry{index: i, p: p})
		default:
			if s.exact == nil {
				s.exact = make(map[exactKey]int)
			}
			k := exactKey{p.scheme, p.host, p.port}
			if _, dup := s.exact[k]; !dup {
				s.exact[k] = i
			}
		}
	}
	return s
}

// Match returns the index in NewSet's slice of the first pattern that
// matches o, and whether there is one; index is -1 when ok is false. o must
// come from ParseOrigin. Match does not allocate.
func (s *Set) Match(o Origin) (index int, ok bool) {
	if s == nil {
		return -1, false
	}
	best := -1
	if s.exact != nil {
		if i, found := s.exact[exactKey{o.Scheme, o.Host, o.Port}]; found {
			best = i
		}
	}
	for _, w := range s.wild {
		if best >= 0 && w.index > best {
			break
		}
		if w.p.Match(o) {
			return w.index, true
		}
	}
	return best, best >= 0
}

// Len returns the number of patterns given to NewSet.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.patterns)
}

// Pattern returns the pattern at index i, as given to NewSet. It panics if
// i is out of range.
func (s *Set) Pattern(i int) Pattern {
	return s.patterns[i]
}
