package probe

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

var frameCases = []struct {
	name string
	wire []byte
	want frame
	err  error
}{
	{"text", []byte{0x81, 0x02, 'h', 'i'}, frame{fin: true, op: opText, data: []byte("hi")}, nil},
	{"continuation no fin", []byte{0x00, 0x01, 'x'}, frame{op: opContinuation, data: []byte("x")}, nil},
	{"rsv1 compressed", []byte{0xC1, 0x01, 0x00}, frame{fin: true, rsv: 0x4, op: opText, data: []byte{0}}, nil},
	{"close 1009", []byte{0x88, 0x02, 0x03, 0xF1}, frame{fin: true, op: opClose, data: []byte{0x03, 0xF1}}, nil},
	{"masked", []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}, frame{fin: true, op: opText, mask: true, data: []byte("hi")}, nil},
	{"16-bit length", append([]byte{0x82, 126, 0x00, 0x7E}, make([]byte, 126)...), frame{fin: true, op: opBinary, data: make([]byte, 126)}, nil},
	{"64-bit length", append([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, make([]byte, 65536)...), frame{fin: true, op: opBinary, data: make([]byte, 65536)}, nil},
	{"top bit set", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, frame{}, errBadLength},
	{"over the cap", []byte{0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0}, frame{}, errFrameTooBig},
	{"control over 125", append([]byte{0x89, 126, 0x00, 0x7E}, make([]byte, 126)...), frame{}, errShortControl},
	{"truncated header", []byte{0x81}, frame{}, io.ErrUnexpectedEOF},
	{"truncated payload", []byte{0x81, 0x05, 'h'}, frame{}, io.ErrUnexpectedEOF},
	{"empty", nil, frame{}, io.EOF},
}

func TestReadFrame(t *testing.T) {
	for _, tc := range frameCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := readFrame(bufio.NewReader(bytes.NewReader(tc.wire)), 1<<20)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.fin != tc.want.fin || f.rsv != tc.want.rsv || f.op != tc.want.op || f.mask != tc.want.mask || !bytes.Equal(f.data, tc.want.data) {
				t.Fatalf("got %+v, want %+v", f, tc.want)
			}
		})
	}
}

// TestAppendFrame_WritesWhatGorillaRefuses: the frame writer sends the
// malformed frames the checks need, and they read back as written.
func TestAppendFrame_WritesWhatGorillaRefuses(t *testing.T) {
	for _, f := range []frame{
		{fin: true, op: opPing, data: bytes.Repeat([]byte("p"), 126)}, // control over 125
		{fin: true, op: opText, data: []byte("\xff\xfe")},             // invalid UTF-8
		{op: opContinuation, data: []byte("a")},                       // a fragment without a start
		{fin: true, rsv: 0x7, op: 0x3, data: nil},                     // reserved bits and opcode
		{fin: true, op: opBinary, data: make([]byte, 70000)},          // 64-bit length
	} {
		wire := appendFrame(nil, f, true, [4]byte{9, 8, 7, 6})
		got, err := readFrame(bufio.NewReader(bytes.NewReader(wire)), -1)
		if err != nil && !(f.control() && errors.Is(err, errShortControl)) {
			t.Fatalf("%+v: %v", f, err)
		}
		if err == nil && (got.fin != f.fin || got.rsv != f.rsv || got.op != f.op || !got.mask || !bytes.Equal(got.data, f.data)) {
			t.Fatalf("round trip: got %+v, want %+v", got, f)
		}
	}
}

func TestParseClose(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		code int
		ok   bool
	}{
		{nil, 1005, true},
		{[]byte{0x03, 0xE8}, 1000, true},
		{append([]byte{0x03, 0xF1}, "message too big"...), 1009, true},
		{[]byte{0x03}, 0, false},
		{[]byte{0x03, 0xE8, 0xff}, 0, false},
	} {
		cp, err := parseClose(tc.data)
		if (err == nil) != tc.ok || cp.code != tc.code {
			t.Errorf("parseClose(%x) = %+v, %v", tc.data, cp, err)
		}
	}
}

func TestDeflateBombInflates(t *testing.T) {
	msg := padded(1<<20, '0')
	z, err := deflateMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(z) > 8<<10 {
		t.Fatalf("1 MiB of zeros compressed to %d bytes", len(z))
	}
	n, err := inflatedSize(z, 4<<20)
	if err != nil || n != int64(len(msg)) {
		t.Fatalf("inflates to %d, %v; want %d", n, err, len(msg))
	}
	if n, _ := inflatedSize(z, 1000); n != 1001 {
		t.Fatalf("a capped inflate read %d bytes, want 1001", n)
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, tc := range frameCases {
		f.Add(tc.wire)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		fr, err := readFrame(bufio.NewReader(bytes.NewReader(wire)), 1<<16)
		if err != nil {
			return
		}
		if fr.control() && len(fr.data) > 125 {
			t.Fatalf("a %d-byte control frame was read", len(fr.data))
		}
		// What was read writes back to a frame that reads the same.
		again := appendFrame(nil, fr, fr.mask, [4]byte{1, 2, 3, 4})
		fr2, err := readFrame(bufio.NewReader(bytes.NewReader(again)), 1<<16)
		if err != nil || fr2.fin != fr.fin || fr2.rsv != fr.rsv || fr2.op != fr.op || !bytes.Equal(fr2.data, fr.data) {
			t.Fatalf("round trip of %+v: %+v, %v", fr, fr2, err)
		}
		if fr.op == opClose {
			_, _ = parseClose(fr.data)
		}
	})
}
