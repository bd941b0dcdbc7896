package share

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func reader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// rawRequest encodes a request by hand: version, CID bytes, offset.
func rawRequest(version byte, cb []byte, off uint64) []byte {
	b := []byte{version}
	b = binary.AppendUvarint(b, uint64(len(cb)))
	b = append(b, cb...)
	return binary.AppendUvarint(b, off)
}

func TestRequestRoundTrip(t *testing.T) {
	c := ComputeCID([]byte("hello\n"))
	for _, off := range []int64{0, 1, 127, 128, 1 << 40, 1 << 62} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			enc := AppendRequest(nil, Request{CID: c, Offset: off})
			// The request is followed by other bytes, which must stay unread.
			r := reader(append(bytes.Clone(enc), "rest"...))
			got, err := ReadRequest(r)
			if err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			if !got.CID.Equals(c) || got.Offset != off {
				t.Errorf("ReadRequest = %s@%d, want %s@%d", got.CID, got.Offset, c, off)
			}
			if rest, _ := io.ReadAll(r); string(rest) != "rest" {
				t.Errorf("ReadRequest consumed past the request: left %q", rest)
			}
		})
	}
}

func TestAppendRequestAppends(t *testing.T) {
	c := ComputeCID(nil)
	prefix := []byte("prefix")
	enc := AppendRequest(bytes.Clone(prefix), Request{CID: c, Offset: 5})
	if !bytes.HasPrefix(enc, prefix) {
		t.Fatalf("AppendRequest dropped the prefix: %q", enc)
	}
	if want := rawRequest(wireVersion, c.Bytes(), 5); !bytes.Equal(enc[len(prefix):], want) {
		t.Errorf("encoding = %x, want %x", enc[len(prefix):], want)
	}
}

func TestReadRequestRejects(t *testing.T) {
	good := ComputeCID([]byte("x"))
	digest := digestOf(good)
	v0 := cid.NewCidV0(good.Hash())
	pb := cid.NewCidV1(cid.DagProtobuf, good.Hash())
	m512, err := mh.Sum([]byte("x"), mh.SHA2_512, -1)
	if err != nil {
		t.Fatal(err)
	}
	sha512 := cid.NewCidV1(cid.Raw, m512)
	mTrunc, err := mh.Encode(digest[:20], mh.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	truncated := cid.NewCidV1(cid.Raw, mTrunc)
	mID, err := mh.Sum([]byte("x"), mh.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	identity := cid.NewCidV1(cid.Raw, mID)

	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrWire},
		{"version 0", rawRequest(0, good.Bytes(), 0), ErrWire},
		{"version 2", rawRequest(2, good.Bytes(), 0), ErrWire},
		{"version 255", rawRequest(255, good.Bytes(), 0), ErrWire},
		{"CID length 0", rawRequest(wireVersion, nil, 0), ErrWire},
		{"CID length 129", rawRequest(wireVersion, make([]byte, 129), 0), ErrWire},
		{"CID length huge", append([]byte{wireVersion}, binary.AppendUvarint(nil, 1<<60)...), ErrWire},
		{"CID length overflows", append([]byte{wireVersion}, bytes.Repeat([]byte{0xff}, 11)...), ErrWire},
		{"CID garbage", rawRequest(wireVersion, []byte("garbage"), 0), ErrBadCID},
		{"CID trailing byte", rawRequest(wireVersion, append(good.Bytes(), 0), 0), ErrBadCID},
		{"CIDv0", rawRequest(wireVersion, v0.Bytes(), 0), ErrBadCID},
		{"CIDv1 dag-pb", rawRequest(wireVersion, pb.Bytes(), 0), ErrBadCID},
		{"CIDv1 raw sha2-512", rawRequest(wireVersion, sha512.Bytes(), 0), ErrBadCID},
		{"CIDv1 raw truncated sha2-256", rawRequest(wireVersion, truncated.Bytes(), 0), ErrBadCID},
		{"CIDv1 raw identity", rawRequest(wireVersion, identity.Bytes(), 0), ErrBadCID},
		{"offset 1<<62+1", rawRequest(wireVersion, good.Bytes(), 1<<62+1), ErrWire},
		{"offset max uint64", rawRequest(wireVersion, good.Bytes(), 1<<64-1), ErrWire},
		{"negative offset", AppendRequest(nil, Request{CID: good, Offset: -1}), ErrWire},
		{"offset overflows", append(append([]byte{wireVersion, byte(len(good.Bytes()))}, good.Bytes()...), bytes.Repeat([]byte{0xff}, 11)...), ErrWire},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ReadRequest(reader(tc.in))
			if err == nil {
				t.Fatalf("ReadRequest accepted %x as %s@%d", tc.in, req.CID, req.Offset)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReadRequestTruncated(t *testing.T) {
	for _, off := range []int64{0, 1 << 40} {
		enc := AppendRequest(nil, Request{CID: ComputeCID([]byte("t")), Offset: off})
		for i := range len(enc) {
			if _, err := ReadRequest(reader(enc[:i])); !errors.Is(err, ErrWire) {
				t.Errorf("offset %d, first %d of %d bytes: err = %v, want ErrWire", off, i, len(enc), err)
			}
		}
		if _, err := ReadRequest(reader(enc)); err != nil {
			t.Errorf("offset %d, whole encoding: %v", off, err)
		}
	}
}

func TestResponseHeaderRoundTrip(t *testing.T) {
	statuses := []Status{StatusOK, StatusNotFound, StatusBadRequest, StatusTooLarge, StatusBusy}
	messages := []string{"", "no such file", "héllo \x00 binary\xff", strings.Repeat("m", maxMessageLen)}
	sizes := []int64{0, 1, 1 << 40, 1 << 62}
	for _, st := range statuses {
		for _, msg := range messages {
			for _, size := range sizes {
				h := ResponseHeader{Status: st, Size: size, Message: msg}
				enc := AppendResponseHeader(nil, h)
				r := reader(append(bytes.Clone(enc), "file bytes"...))
				got, err := ReadResponseHeader(r)
				if err != nil {
					t.Fatalf("%+v: ReadResponseHeader: %v", h, err)
				}
				want := h
				if st == StatusOK {
					want.Message = "" // an ok response carries no message
				}
				if got != want {
					t.Errorf("round trip of %+v gave %+v", want, got)
				}
				if rest, _ := io.ReadAll(r); string(rest) != "file bytes" {
					t.Errorf("%+v: header read consumed file bytes: left %q", h, rest)
				}
			}
		}
	}
}

func TestAppendResponseHeaderEncoding(t *testing.T) {
	for _, tc := range []struct {
		h    ResponseHeader
		want []byte
	}{
		{ResponseHeader{Status: StatusOK, Size: 5, Message: "ignored"}, []byte{0, 5}},
		{ResponseHeader{Status: StatusNotFound, Message: "no"}, []byte{1, 0, 2, 'n', 'o'}},
		{ResponseHeader{Status: StatusBusy}, []byte{4, 0, 0}},
		{ResponseHeader{Status: StatusOK, Size: -7}, []byte{0, 0}}, // negative size encodes as 0
		{ResponseHeader{Status: StatusTooLarge, Size: 300}, []byte{3, 0xac, 0x02, 0}},
	} {
		if got := AppendResponseHeader([]byte{}, tc.h); !bytes.Equal(got, tc.want) {
			t.Errorf("AppendResponseHeader(%+v) = %x, want %x", tc.h, got, tc.want)
		}
	}
}

func TestResponseHeaderMessageTruncated(t *testing.T) {
	for _, n := range []int{maxMessageLen + 1, 300, 10000} {
		long := strings.Repeat("abcdefghij", n/10+1)[:n]
		enc := AppendResponseHeader(nil, ResponseHeader{Status: StatusBadRequest, Message: long})
		got, err := ReadResponseHeader(reader(enc))
		if err != nil {
			t.Fatalf("message of %d bytes: %v", n, err)
		}
		if got.Message != long[:maxMessageLen] {
			t.Errorf("message of %d bytes decoded to %d bytes %q, want its first %d", n, len(got.Message), got.Message, maxMessageLen)
		}
	}
}

func TestReadResponseHeaderRejects(t *testing.T) {
	withMsgLen := func(n uint64, msg string) []byte {
		b := []byte{byte(StatusNotFound), 0}
		b = binary.AppendUvarint(b, n)
		return append(b, msg...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"status 5", []byte{5, 0, 0}},
		{"status 255", []byte{255, 0, 0}},
		{"size 1<<62+1", append([]byte{0}, binary.AppendUvarint(nil, 1<<62+1)...)},
		{"size max uint64", append([]byte{0}, binary.AppendUvarint(nil, 1<<64-1)...)},
		{"size overflows", append([]byte{0}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"message length 257", withMsgLen(maxMessageLen+1, strings.Repeat("x", maxMessageLen+1))},
		{"message length huge", withMsgLen(1<<62, "")},
		{"message length overflows", append([]byte{byte(StatusBusy), 0}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"message shorter than its length", withMsgLen(10, "short")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadResponseHeader(reader(tc.in))
			if err == nil {
				t.Fatalf("ReadResponseHeader accepted %x as %+v", tc.in, h)
			}
			if !errors.Is(err, ErrWire) {
				t.Errorf("err = %v, want ErrWire", err)
			}
		})
	}
}

func TestReadResponseHeaderTruncated(t *testing.T) {
	for _, h := range []ResponseHeader{
		{Status: StatusOK, Size: 1 << 40},
		{Status: StatusNotFound, Size: 0, Message: "gone"},
		{Status: StatusTooLarge, Size: 1 << 33, Message: strings.Repeat("z", maxMessageLen)},
	} {
		enc := AppendResponseHeader(nil, h)
		for i := range len(enc) {
			if _, err := ReadResponseHeader(reader(enc[:i])); !errors.Is(err, ErrWire) {
				t.Errorf("%+v, first %d of %d bytes: err = %v, want ErrWire", h, i, len(enc), err)
			}
		}
	}
}

func TestStatusString(t *testing.T) {
	for _, tc := range []struct {
		s    Status
		want string
	}{
		{StatusOK, "ok"},
		{StatusNotFound, "not found"},
		{StatusBadRequest, "bad request"},
		{StatusTooLarge, "too large"},
		{StatusBusy, "busy"},
		{Status(5), "status(5)"},
		{Status(255), "status(255)"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Status(%d).String() = %q, want %q", byte(tc.s), got, tc.want)
		}
	}
}
