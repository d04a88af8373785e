package probe

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// frame is one WebSocket frame as it travels, payload unmasked.
type frame struct {
	fin  bool
	rsv  byte // the three RSV bits, RSV1 first (0x4 = RSV1)
	op   byte
	mask bool // set on frames read from the wire that carried a mask
	data []byte
}

func (f frame) control() bool { return f.op&0x8 != 0 }

// Frame reading errors.
var (
	errFrameTooBig  = errors.New("frame payload over the read cap")
	errBadLength    = errors.New("64-bit payload length with the top bit set")
	errShortControl = errors.New("control frame with a non-minimal or over-125-byte length")
)

// appendFrame appends f to dst in wire form. A client frame (masked true)
// carries the masking key key and its payload is masked with it; a server
// frame carries none. appendFrame writes whatever it is given: opcodes,
// RSV bits and control payloads over 125 bytes included, which is the
// point of a probe.
func appendFrame(dst []byte, f frame, masked bool, key [4]byte) []byte {
	b0 := f.rsv<<4 | f.op&0x0F
	if f.fin {
		b0 |= 0x80
	}
	var b1 byte
	if masked {
		b1 = 0x80
	}
	n := len(f.data)
	switch {
	case n <= 125:
		dst = append(dst, b0, b1|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, b0, b1|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if !masked {
		return append(dst, f.data...)
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, f.data...)
	for i := range f.data {
		dst[start+i] ^= key[i&3]
	}
	return dst
}

// readFrame reads one frame. It refuses a payload longer than max before
// reading it, a 64-bit length with its top bit set, and a control frame
// whose length is over 125 (servers never send one; a probe must not be
// made to buffer it). A masked frame is unmasked.
func readFrame(r *bufio.Reader, max int64) (frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{fin: h[0]&0x80 != 0, rsv: (h[0] >> 4) & 0x7, op: h[0] & 0x0F, mask: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return frame{}, unexpected(err)
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return frame{}, unexpected(err)
		}
		n = binary.BigEndian.Uint64(ext[:])
		if n>>63 != 0 {
			return frame{}, errBadLength
		}
	}
	if f.control() && n > 125 {
		return frame{}, errShortControl
	}
	if max >= 0 && n > uint64(max) {
		return frame{}, fmt.Errorf("%w: %d bytes", errFrameTooBig, n)
	}
	var key [4]byte
	if f.mask {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return frame{}, unexpected(err)
		}
	}
	f.data = make([]byte, n)
	if _, err := io.ReadFull(r, f.data); err != nil {
		return frame{}, unexpected(err)
	}
	if f.mask {
		for i := range f.data {
			f.data[i] ^= key[i&3]
		}
	}
	return f, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// closePayload is a close frame's body: a status code and a reason. A
// close frame without a body has code 1005 (no status received).
type closePayload struct {
	code   int
	reason string
}

// parseClose reads a close frame's body. A one-byte body, or a reason that
// is not UTF-8, is malformed.
func parseClose(data []byte) (closePayload, error) {
	switch {
	case len(data) == 0:
		return closePayload{code: 1005}, nil
	case len(data) == 1:
		return closePayload{}, errors.New("one-byte close body")
	}
	reason := data[2:]
	if !utf8.Valid(reason) {
		return closePayload{}, errors.New("close reason is not UTF-8")
	}
	return closePayload{code: int(binary.BigEndian.Uint16(data)), reason: string(reason)}, nil
}

// deflateMessage compresses a whole message for permessage-deflate
// (RFC 7692 section 7.2.1): a raw DEFLATE stream flushed to a byte
// boundary, without the trailing empty stored block.
func deflateMessage(msg []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(msg); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{0x00, 0x00, 0xff, 0xff}), nil
}

// inflatedSize returns the size a permessage-deflate message inflates to,
// reading no more than max+1 bytes of output (so a bomb sent back costs
// the probe nothing).
func inflatedSize(compressed []byte, max int64) (int64, error) {
	src := io.MultiReader(bytes.NewReader(compressed), bytes.NewReader([]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}))
	fr := flate.NewReader(src)
	defer fr.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(fr, max+1))
	if err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, err
}
