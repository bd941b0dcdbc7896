package share

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

// consumed is how many bytes of data a decoder read from r, a bufio.Reader
// over br, a bytes.Reader over data.
func consumed(data []byte, r *bufio.Reader, br *bytes.Reader) int {
	return len(data) - r.Buffered() - br.Len()
}

func FuzzReadRequest(f *testing.F) {
	c := ComputeCID([]byte("hello\n"))
	for _, off := range []int64{0, 1, 127, 128, 1 << 40, 1 << 62} {
		f.Add(AppendRequest(nil, Request{CID: c, Offset: off}))
	}
	f.Add(AppendRequest(nil, Request{CID: ComputeCID(nil), Offset: 5}))
	f.Add(append(AppendRequest(nil, Request{CID: c}), "trailing"...))
	f.Add(rawRequest(wireVersion, cid.NewCidV0(c.Hash()).Bytes(), 0))
	f.Add(rawRequest(wireVersion, cid.NewCidV1(cid.DagProtobuf, c.Hash()).Bytes(), 0))
	f.Add(rawRequest(wireVersion, c.Bytes(), 1<<62+1))
	f.Add(rawRequest(2, c.Bytes(), 0))
	f.Add([]byte{})
	f.Add([]byte{wireVersion, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})

	f.Fuzz(func(t *testing.T, data []byte) {
		br := bytes.NewReader(data)
		r := bufio.NewReader(br)
		req, err := ReadRequest(r)
		if err != nil {
			return
		}
		if err := checkCID(req.CID); err != nil {
			t.Fatalf("accepted a CID that is not CIDv1 raw sha2-256: %v", err)
		}
		if req.Offset < 0 || req.Offset > 1<<62 {
			t.Fatalf("accepted offset %d", req.Offset)
		}
		enc := AppendRequest(nil, req)
		if n := consumed(data, r, br); len(enc) > n {
			t.Fatalf("canonical encoding (%d bytes) longer than the %d bytes decoded", len(enc), n)
		}
		req2, err := ReadRequest(reader(enc))
		if err != nil {
			t.Fatalf("re-encoded request %x does not decode: %v", enc, err)
		}
		if !req2.CID.Equals(req.CID) || req2.Offset != req.Offset {
			t.Fatalf("round trip: %s@%d became %s@%d", req.CID, req.Offset, req2.CID, req2.Offset)
		}
	})
}

func FuzzReadResponseHeader(f *testing.F) {
	for _, st := range []Status{StatusOK, StatusNotFound, StatusBadRequest, StatusTooLarge, StatusBusy} {
		for _, h := range []ResponseHeader{
			{Status: st},
			{Status: st, Size: 1 << 40, Message: "some reason"},
			{Status: st, Size: 1 << 62, Message: strings.Repeat("m", maxMessageLen)},
		} {
			f.Add(AppendResponseHeader(nil, h))
		}
	}
	f.Add(append(AppendResponseHeader(nil, ResponseHeader{Status: StatusOK, Size: 10}), "file bytes"...))
	f.Add([]byte{5, 0, 0})
	f.Add([]byte{byte(StatusNotFound), 0, 0x81, 0x02})
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		br := bytes.NewReader(data)
		r := bufio.NewReader(br)
		h, err := ReadResponseHeader(r)
		if err != nil {
			return
		}
		if h.Status > StatusBusy {
			t.Fatalf("accepted status %d", h.Status)
		}
		if h.Size < 0 || h.Size > 1<<62 {
			t.Fatalf("accepted size %d", h.Size)
		}
		if len(h.Message) > maxMessageLen {
			t.Fatalf("accepted a %d-byte message", len(h.Message))
		}
		if h.Status == StatusOK && h.Message != "" {
			t.Fatalf("ok response with message %q", h.Message)
		}
		enc := AppendResponseHeader(nil, h)
		if n := consumed(data, r, br); len(enc) > n {
			t.Fatalf("canonical encoding (%d bytes) longer than the %d bytes decoded", len(enc), n)
		}
		h2, err := ReadResponseHeader(reader(enc))
		if err != nil {
			t.Fatalf("re-encoded header %x does not decode: %v", enc, err)
		}
		if h2 != h {
			t.Fatalf("round trip: %+v became %+v", h, h2)
		}
	})
}
