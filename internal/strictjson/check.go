package strictjson

// The checker: one pass over a JSON value that enforces what encoding/json
// does not (duplicate keys, depth) and, given a schema, the exact key set
// and JSON kinds of the Go type the value will be decoded into.

import (
	"bytes"
	"slices"
)

// span locates a decoded object key: in the input when it has no escapes,
// else in the scratch buffer.
// Offsets fit in 32 bits: Parse refuses inputs of MaxInput bytes or more.
type span struct {
	off, n  uint32
	scratch bool
}

func mkSpan(off, end int, scratch bool) span {
	return span{off: uint32(off), n: uint32(end - off), scratch: scratch}
}

func (s span) bytes(data, scratch []byte) []byte {
	off, end := int(s.off), int(s.off)+int(s.n)
	if s.scratch {
		return scratch[off:end:end]
	}
	return data[off:end:end]
}

// frame is one open object or array of the explicit parse stack.
type frame struct {
	sch     *node  // the container's schema; nil accepts anything
	keyBase uint32 // index in keys of the object's first key
	obj     bool
}

// linearDupKeys is the number of keys per object checked for duplicates
// pairwise as they arrive; larger objects are sorted once when they close,
// so that a message with thousands of keys costs O(n log n), not O(n²).
const linearDupKeys = 16

// Inline capacities of the parse stacks; deeper or wider messages spill to
// the heap.
const (
	inlineFrames = DefaultMaxDepth
	inlineKeys   = 32
)

const (
	stValue = iota // a value is expected at i
	stKey          // an object key is expected at i (whitespace skipped)
	stAfter        // a value ended just before i
)

// checkValue validates the JSON value that starts at or after data[i]
// (after whitespace), enforcing duplicate keys, the depth limit and the
// schema sch (nil: anything; pointers are transparent, as in JSON). depth
// is the depth of the value's container. It returns the index just after
// the value and scratch, to which escaped keys were appended. It does not
// recurse.
func checkValue(data []byte, i int, sch *node, depth, maxDepth int, scratch []byte) (int, []byte, *Error) {
	var frameBuf [inlineFrames]frame
	frames := frameBuf[:0]
	var keyBuf [inlineKeys]span
	keys := keyBuf[:0]
	cur := sch
	st := stValue
	var err *Error
	for {
		switch st {
		case stValue:
			i = skipWS(data, i)
			if i >= len(data) {
				return 0, scratch, ErrInvalidJSON
			}
			cur = cur.deref()
			k := kAny
			if cur != nil {
				k = cur.kind
			}
			st = stAfter
			switch c := data[i]; c {
			case '{':
				if k != kAny && k != kStruct && k != kMap {
					return 0, scratch, ErrWrongType
				}
				if depth++; depth > maxDepth {
					return 0, scratch, ErrTooDeep
				}
				if i = skipWS(data, i+1); i < len(data) && data[i] == '}' {
					i++
					depth--
					continue
				}
				frames = append(frames, frame{sch: cur, keyBase: uint32(len(keys)), obj: true})
				st = stKey
			case '[':
				if k != kAny && k != kArray {
					return 0, scratch, ErrWrongType
				}
				if depth++; depth > maxDepth {
					return 0, scratch, ErrTooDeep
				}
				if i = skipWS(data, i+1); i < len(data) && data[i] == ']' {
					i++
					depth--
					continue
				}
				frames = append(frames, frame{sch: cur})
				cur = cur.elemNode()
				st = stValue
			case '"':
				if k != kAny && k != kString {
					return 0, scratch, ErrWrongType
				}
				if i, _, err = scanString(data, i+1); err != nil {
					return 0, scratch, err
				}
				i++
			case 't', 'f':
				if k != kAny && k != kBool {
					return 0, scratch, ErrWrongType
				}
				lit := "true"
				if c == 'f' {
					lit = "false"
				}
				if i, err = scanLiteral(data, i, lit); err != nil {
					return 0, scratch, err
				}
			case 'n': // null decodes into anything
				if i, err = scanLiteral(data, i, "null"); err != nil {
					return 0, scratch, err
				}
			default:
				if c != '-' && (c < '0' || c > '9') {
					return 0, scratch, ErrInvalidJSON
				}
				if k != kAny && k != kNumber {
					return 0, scratch, ErrWrongType
				}
				if i, err = scanNumber(data, i); err != nil {
					return 0, scratch, err
				}
			}

		case stKey:
			if i >= len(data) || data[i] != '"' {
				return 0, scratch, ErrInvalidJSON
			}
			q, esc, err := scanString(data, i+1)
			if err != nil {
				return 0, scratch, err
			}
			s := mkSpan(i+1, q, false)
			if esc {
				off := len(scratch)
				scratch = appendUnescaped(scratch, data[i+1:q])
				s = mkSpan(off, len(scratch), true)
			}
			name := s.bytes(data, scratch)
			f := &frames[len(frames)-1]
			if len(keys)-int(f.keyBase) < linearDupKeys {
				for _, o := range keys[f.keyBase:] {
					if bytes.Equal(o.bytes(data, scratch), name) {
						return 0, scratch, ErrDuplicateKey
					}
				}
			}
			keys = append(keys, s)
			cur = nil
			if f.sch != nil {
				switch f.sch.kind {
				case kStruct:
					fi := f.sch.lookup(name, 0)
					if fi < 0 {
						return 0, scratch, ErrUnknownField
					}
					cur = f.sch.fields[fi].node
				case kMap:
					cur = f.sch.elem
				}
			}
			if i = skipWS(data, q+1); i >= len(data) || data[i] != ':' {
				return 0, scratch, ErrInvalidJSON
			}
			i++
			st = stValue

		case stAfter:
			if len(frames) == 0 {
				return i, scratch, nil
			}
			if i = skipWS(data, i); i >= len(data) {
				return 0, scratch, ErrInvalidJSON
			}
			f := &frames[len(frames)-1]
			switch c := data[i]; {
			case c == ',' && f.obj:
				i = skipWS(data, i+1)
				st = stKey
			case c == ',':
				i++
				cur = f.sch.elemNode()
				st = stValue
			case c == '}' && f.obj:
				if len(keys)-int(f.keyBase) > linearDupKeys && hasDuplicate(data, scratch, keys[f.keyBase:]) {
					return 0, scratch, ErrDuplicateKey
				}
				keys = keys[:f.keyBase]
				frames = frames[:len(frames)-1]
				depth--
				i++
			case c == ']' && !f.obj:
				frames = frames[:len(frames)-1]
				depth--
				i++
			default:
				return 0, scratch, ErrInvalidJSON
			}
		}
	}
}

// hasDuplicate reports whether keys holds two equal keys. It reorders keys.
func hasDuplicate(data, scratch []byte, keys []span) bool {
	slices.SortFunc(keys, func(a, b span) int {
		return bytes.Compare(a.bytes(data, scratch), b.bytes(data, scratch))
	})
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(keys[i-1].bytes(data, scratch), keys[i].bytes(data, scratch)) {
			return true
		}
	}
	return false
}
