package share

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// ProtocolID is the transfer protocol: one request, one response, one stream.
//
//	request:  version byte (1) | uvarint len | CID bytes | uvarint offset
//	response: status byte | uvarint size | [uvarint len | message, if status != ok]
//	          | the file's bytes from offset to size (if status == ok)
//
// Every length read from the wire is capped before anything is allocated.
const ProtocolID = "/p2pshare/get/1.0.0"

const (
	wireVersion   = 1
	maxCIDBytes   = 128
	maxMessageLen = 256
)

// Status is the first byte of a response.
type Status byte

// Response statuses.
const (
	StatusOK Status = iota
	StatusNotFound
	StatusBadRequest
	StatusTooLarge
	StatusBusy
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not found"
	case StatusBadRequest:
		return "bad request"
	case StatusTooLarge:
		return "too large"
	case StatusBusy:
		return "busy"
	}
	return fmt.Sprintf("status(%d)", byte(s))
}

// ErrWire: bytes on the stream that do not follow the protocol.
var ErrWire = errors.New("protocol violation")

// Request asks for the bytes of CID from Offset on.
type Request struct {
	CID    cid.Cid
	Offset int64
}

// AppendRequest encodes r.
func AppendRequest(b []byte, r Request) []byte {
	cb := r.CID.Bytes()
	b = append(b, wireVersion)
	b = binary.AppendUvarint(b, uint64(len(cb)))
	b = append(b, cb...)
	return binary.AppendUvarint(b, uint64(r.Offset))
}

// ReadRequest decodes a request, rejecting unknown versions, oversize or
// malformed CIDs and negative offsets.
func ReadRequest(r *bufio.Reader) (Request, error) {
	v, err := r.ReadByte()
	if err != nil {
		return Request{}, fmt.Errorf("%w: read version: %v", ErrWire, err)
	}
	if v != wireVersion {
		return Request{}, fmt.Errorf("%w: unknown version %d", ErrWire, v)
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return Request{}, fmt.Errorf("%w: read CID length: %v", ErrWire, err)
	}
	if n == 0 || n > maxCIDBytes {
		return Request{}, fmt.Errorf("%w: CID length %d", ErrWire, n)
	}
	cb := make([]byte, n)
	if _, err := io.ReadFull(r, cb); err != nil {
		return Request{}, fmt.Errorf("%w: read CID: %v", ErrWire, err)
	}
	c, err := cid.Cast(cb)
	if err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadCID, err)
	}
	if err := checkCID(c); err != nil {
		return Request{}, err
	}
	off, err := binary.ReadUvarint(r)
	if err != nil {
		return Request{}, fmt.Errorf("%w: read offset: %v", ErrWire, err)
	}
	if off > 1<<62 {
		return Request{}, fmt.Errorf("%w: offset %d", ErrWire, off)
	}
	return Request{CID: c, Offset: int64(off)}, nil
}

// ResponseHeader precedes the bytes of a response.
type ResponseHeader struct {
	Status  Status
	Size    int64  // the file's total size (StatusOK, StatusTooLarge)
	Message string // why, for statuses other than ok
}

// AppendResponseHeader encodes h.
func AppendResponseHeader(b []byte, h ResponseHeader) []byte {
	b = append(b, byte(h.Status))
	b = binary.AppendUvarint(b, uint64(max(h.Size, 0)))
	if h.Status != StatusOK {
		msg := h.Message
		if len(msg) > maxMessageLen {
			msg = msg[:maxMessageLen]
		}
		b = binary.AppendUvarint(b, uint64(len(msg)))
		b = append(b, msg...)
	}
	return b
}

// ReadResponseHeader decodes a response header.
func ReadResponseHeader(r *bufio.Reader) (ResponseHeader, error) {
	s, err := r.ReadByte()
	if err != nil {
		return ResponseHeader{}, fmt.Errorf("%w: read status: %v", ErrWire, err)
	}
	if Status(s) > StatusBusy {
		return ResponseHeader{}, fmt.Errorf("%w: unknown status %d", ErrWire, s)
	}
	size, err := binary.ReadUvarint(r)
	if err != nil {
		return ResponseHeader{}, fmt.Errorf("%w: read size: %v", ErrWire, err)
	}
	if size > 1<<62 {
		return ResponseHeader{}, fmt.Errorf("%w: size %d", ErrWire, size)
	}
	h := ResponseHeader{Status: Status(s), Size: int64(size)}
	if h.Status != StatusOK {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return ResponseHeader{}, fmt.Errorf("%w: read message length: %v", ErrWire, err)
		}
		if n > maxMessageLen {
			return ResponseHeader{}, fmt.Errorf("%w: message length %d", ErrWire, n)
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return ResponseHeader{}, fmt.Errorf("%w: read message: %v", ErrWire, err)
		}
		h.Message = string(msg)
	}
	return h, nil
}
