package rtmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
)

const (
	// maxChunkBeforeAuth bounds the chunk size a client may set before its
	// key is checked: the reader allocates a chunk's body from its header
	// alone, so a 10 MB chunk size makes every chunk header of an
	// unauthenticated socket cost 10 MB. Encoders set 4 KiB (ffmpeg, OBS)
	// to 64 KiB (gortmplib).
	maxChunkBeforeAuth = 64 << 10
	// maxBytesBeforeAuth bounds what a client may send before its key is
	// checked: the handshake (3073 bytes) and a few commands take ~4 KiB.
	maxBytesBeforeAuth = 256 << 10
	// handshakeLen is C0, C1 and C2 (RTMP 1.0 section 5.2).
	handshakeLen = 1 + 1536 + 1536
	// maxBody is gortmplib's bound on a message.
	maxBody = 10 << 20
)

var (
	errChunkSize  = errors.New("chunk size too large before authentication")
	errTooMuch    = errors.New("too much data before authentication")
	errChunkState = errors.New("malformed chunk stream")
)

// chunkGuard follows the RTMP chunk stream (RTMP 1.0 section 5.3) a
// client sends until its key is checked, as gortmplib's reader parses
// it, and fails the read that would complete a Set Chunk Size message
// above maxChunkBeforeAuth, before the reader can apply it. Once
// authenticated it only passes bytes through. It is read by one
// goroutine.
type chunkGuard struct {
	net.Conn
	authed atomic.Bool
	p      chunkParser
}

func (g *chunkGuard) Read(b []byte) (int, error) {
	n, err := g.Conn.Read(b)
	if n > 0 && !g.authed.Load() {
		if perr := g.p.feed(b[:n]); perr != nil {
			return 0, perr
		}
	}
	return n, err
}

// chunkParser is the parsing state, byte by byte.
type chunkParser struct {
	total     int
	chunkSize uint32
	streams   map[byte]*chunkStream

	state int // 0 basic header, 1 message header, 2 extended timestamp, 3 payload
	fmt   byte
	cur   *chunkStream
	hdr   [11]byte
	need  int
	got   int
	left  uint32 // payload bytes left in this chunk
}

type chunkStream struct {
	started bool
	ext     bool
	typ     byte
	bodyLen uint32
	recv    uint32
	body    [4]byte // the message's first bytes
}

var headerLens = [4]int{11, 7, 3, 0}

func (p *chunkParser) feed(b []byte) error {
	for _, c := range b {
		p.total++
		if p.total > maxBytesBeforeAuth {
			return errTooMuch
		}
		if p.total <= handshakeLen {
			continue
		}
		if p.chunkSize == 0 {
			p.chunkSize = 128
			p.streams = map[byte]*chunkStream{}
		}
		if err := p.byte(c); err != nil {
			return err
		}
	}
	return nil
}

func (p *chunkParser) byte(c byte) error {
	switch p.state {
	case 0:
		p.fmt, p.got = c>>6, 0
		id := c & 0x3f
		if id < 2 {
			return errChunkState // gortmplib refuses extended ids too
		}
		if p.cur = p.streams[id]; p.cur == nil {
			if len(p.streams) >= 64 {
				return errChunkState
			}
			p.cur = &chunkStream{}
			p.streams[id] = p.cur
		}
		p.need, p.state = headerLens[p.fmt], 1
		if p.need == 0 {
			return p.header()
		}
	case 1:
		p.hdr[p.got] = c
		if p.got++; p.got == p.need {
			return p.header()
		}
	case 2:
		if p.got++; p.got == 4 {
			return p.payloadStart()
		}
	case 3:
		s := p.cur
		if s.recv < 4 {
			s.body[s.recv] = c
		}
		s.recv++
		p.left--
		if s.recv == s.bodyLen {
			if err := p.message(); err != nil {
				return err
			}
		}
		if p.left == 0 {
			p.state = 0
		}
	}
	return nil
}

// header applies a chunk's message header as gortmplib does.
func (p *chunkParser) header() error {
	s, h := p.cur, p.hdr
	u24 := func(i int) uint32 { return uint32(h[i])<<16 | uint32(h[i+1])<<8 | uint32(h[i+2]) }
	switch p.fmt {
	case 0, 1:
		if p.fmt == 1 && !s.started || s.recv != 0 {
			return errChunkState
		}
		s.started, s.ext, s.bodyLen, s.typ = true, u24(0) >= 0xffffff, u24(3), h[6]
	case 2:
		if !s.started || s.recv != 0 {
			return errChunkState
		}
		s.ext = u24(0) >= 0xffffff
	case 3:
		if !s.started {
			return errChunkState
		}
	}
	if s.bodyLen > maxBody {
		return fmt.Errorf("%w: message of %d bytes", errChunkState, s.bodyLen)
	}
	p.got = 0
	if s.ext {
		p.state = 2
		return nil
	}
	return p.payloadStart()
}

func (p *chunkParser) payloadStart() error {
	s := p.cur
	p.left = min(s.bodyLen-s.recv, p.chunkSize)
	p.state = 3
	if p.left == 0 {
		p.state = 0
		if s.bodyLen == 0 {
			return p.message()
		}
	}
	return nil
}

// message handles a complete message: Set Chunk Size (type 1) and Abort
// (type 2) change how the next chunks are read.
func (p *chunkParser) message() error {
	s := p.cur
	defer func() { s.recv = 0 }()
	if s.bodyLen != 4 {
		return nil
	}
	v := binary.BigEndian.Uint32(s.body[:])
	switch s.typ {
	case 1:
		if v > maxChunkBeforeAuth {
			return fmt.Errorf("%w: %d bytes (at most %d)", errChunkSize, v, maxChunkBeforeAuth)
		}
		if v == 0 {
			return errChunkState
		}
		p.chunkSize = v
	case 2:
		if a := p.streams[byte(v)]; a != nil && a != s {
			a.recv = 0
		}
	}
	return nil
}
