package strictjson

import (
	"strings"
	"testing"
)

// TestScanStringPositions puts each kind of special byte at every offset
// of strings around the 8-byte boundaries of the word-at-a-time scan.
func TestScanStringPositions(t *testing.T) {
	for n := 0; n <= 25; n++ {
		for p := 0; p <= n; p++ {
			for _, tc := range []struct {
				special string
				err     *Error
				escaped bool
			}{
				{"\x01", ErrInvalidJSON, false},
				{"\x1f", ErrInvalidJSON, false},
				{"\xff", ErrInvalidUTF8, false},
				{"\xc3", ErrInvalidUTF8, false},
				{"é", nil, false},
				{"\U0001F600", nil, false},
				{"\x7f", nil, false},
				{" ", nil, false},
				{`\n`, nil, true},
				{`\"`, nil, true},
				{`\\`, nil, true},
				{`\u00e9`, nil, true},
				{`\q`, ErrInvalidEscape, false},
			} {
				body := strings.Repeat("a", p) + tc.special + strings.Repeat("b", n-p)
				for _, tail := range []string{"", "}", `"x\":1} trailing "more`} {
					data := []byte(`"` + body + `"` + tail)
					end, esc, err := scanString(data, 1)
					if err != tc.err {
						t.Fatalf("scanString(%q) error %v, want %v", data, err, tc.err)
					}
					if err == nil && (end != 1+len(body) || esc != tc.escaped) {
						t.Fatalf("scanString(%q) = %d, %t; want %d, %t", data, end, esc, 1+len(body), tc.escaped)
					}
				}
				// Unterminated.
				if _, _, err := scanString([]byte(`"`+body), 1); err == nil {
					t.Fatalf("unterminated %q accepted", body)
				}
			}
		}
	}
}

func TestAppendUnescaped(t *testing.T) {
	for in, want := range map[string]string{
		``:                         ``,
		`plain`:                    `plain`,
		`a\"b\\c\/d`:               `a"b\c/d`,
		`\b\f\n\r\t`:               "\b\f\n\r\t",
		`\u0041\u00e9\u20ac`:       "Aé€",
		`x\ud83d\ude00y`:           "x😀y",
		`\uD83D\uDE00`:             "😀",
		`\u0000`:                   "\x00",
		`long run without escapes`: `long run without escapes`,
	} {
		if got := string(appendUnescaped(nil, []byte(in))); got != want {
			t.Errorf("appendUnescaped(%q) = %q, want %q", in, got, want)
		}
	}
}
