package kv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"
)

// FuzzUnmarshalRecord: Unmarshal never panics, fails only with
// ErrBadRecord, and whatever it accepts is a verified record that encodes
// and decodes again to the same record.
func FuzzUnmarshalRecord(f *testing.F) {
	k, secp := testKey(f, 1), testSecpKey(f, 0x11)
	self := idOf(f, k).String()
	c := testCID(f, "file").String()
	custody, _ := json.Marshal(HoldValue{CustodyFor: idOf(f, testKey(f, 2))})
	seeds := []*Record{
		userRecord("greeting", "hello"),
		userRecord("", "empty key"),
		userRecord("日本語 🙂 <&>\"", "v"),
		{NS: NSUser, Key: "e", Value: []byte("v"), Time: Timestamp{Wall: testWall, Logical: 9}, Expires: testWall + int64(time.Hour)},
		{NS: NSUser, Key: "gone", Deleted: true, Time: Timestamp{Wall: testWall}},
		{NS: NSUser, Key: "bad", Deleted: true, Value: []byte("x"), Time: Timestamp{Wall: testWall}},
		{NS: NSUser, Key: "t", Time: Timestamp{Wall: maxWall, Logical: ^uint32(0)}},
		{NS: NSName, Key: "movie.mkv", Value: nameValue(f, c, 1234), Time: Timestamp{Wall: testWall}},
		{NS: NSName, Key: "../x", Value: nameValue(f, c, -1), Time: Timestamp{Wall: testWall}},
		{NS: NSHold, Key: c + "/" + self, Time: Timestamp{Wall: testWall}},
		{NS: NSHold, Key: c + "/" + self, Value: custody, Time: Timestamp{Wall: testWall}},
		{NS: "other", Key: "k", Time: Timestamp{Wall: testWall}},
	}
	for i, r := range seeds {
		key := k
		if i%4 == 3 {
			key = secp
		}
		if err := r.Sign(key); err != nil {
			f.Fatal(err)
		}
		b, err := r.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "null", "{}", "[]", `"x"`, "{", "\xff",
		`{"ns":"kv","key":"k","time":{"wall":1735689600000000000},"writer":"12D3KooWAbc","sig":""}`,
		`{"NS":"kv","KEY":"k","Value":"","TIME":{"Wall":1735689600000000000,"Logical":0},"writer":"QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N","sig":null}`,
		`{"ns":"kv","key":"\ud800","value":"AA==","deleted":true,"expires":-1}`,
		`{"ns":"hold","key":"a/b","writer":"bafzaajaiaejca","time":{"wall":1e18}}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("Unmarshal error %v is not ErrBadRecord", err)
			}
			if r != nil {
				t.Fatal("Unmarshal returned a record with its error")
			}
			return
		}
		if len(data) > MaxRecordSize {
			t.Fatalf("Unmarshal accepted %d bytes", len(data))
		}
		if err := r.verify(); err != nil {
			t.Fatalf("an accepted record does not verify: %v", err)
		}
		if err := ValidateKey(r.Key); err != nil || !validNS(r.NS) {
			t.Fatalf("an accepted record has namespace %q key %q", r.NS, r.Key)
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatalf("Marshal of an accepted record: %v", err)
		}
		r2, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("re-encoded record %s is rejected: %v", b, err)
		}
		if !recordsEqual(r, r2) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, r2)
		}
		if b2, err := r2.Marshal(); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("the encoding is not stable: %s / %s (%v)", b, b2, err)
		}
		if r.digest() != r2.digest() || r.Wins(r2) || r2.Wins(r) {
			t.Fatal("the re-decoded record is another write")
		}
		if err := (Validator{Now: func() time.Time { return time.Unix(0, r.Time.Wall) }}).Validate(DHTKey(r.NS, r.Key), data); err != nil && !errors.Is(err, ErrExpired) {
			t.Fatalf("Validate of an accepted record under its own key: %v", err)
		}
	})
}

// FuzzReadFrame: readFrame never panics and never returns more than max
// bytes; every frame it returns is exactly the payload behind a well-formed
// header; writeFrame's output reads back.
func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = writeFrame(&buf, []byte("hello"))
	_ = writeFrame(&buf, nil)
	_ = writeFrame(&buf, bytes.Repeat([]byte{1}, 300))
	two := bytes.Clone(buf.Bytes())
	for _, s := range []struct {
		data []byte
		max  uint16
	}{
		{nil, 0},
		{[]byte{0}, 0},
		{[]byte{5, 'h', 'e', 'l', 'l', 'o'}, 5},
		{[]byte{5, 'h', 'e', 'l', 'l', 'o'}, 4},
		{[]byte{5, 'h', 'e'}, 100},
		{[]byte{0x80}, 100},
		{[]byte{0x80, 0x00}, 100},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 65535},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 65535},
		{[]byte{0xff, 0xff, 0x03}, 65535},
		{two, 300},
		{two, 299},
	} {
		f.Add(s.data, s.max)
	}

	f.Fuzz(func(t *testing.T, data []byte, max16 uint16) {
		max := int(max16)
		src := bytes.NewReader(data)
		r := bufio.NewReaderSize(src, 16)
		prev := 0
		for {
			b, err := readFrame(r, max)
			consumed := len(data) - src.Len() - r.Buffered()
			if err != nil {
				if b != nil {
					t.Fatalf("readFrame returned %d bytes with error %v", len(b), err)
				}
				if prev == len(data) && err != io.EOF {
					t.Fatalf("at the end of the input: %v, want io.EOF", err)
				}
				if errors.Is(err, ErrBadSync) {
					n, k := binary.Uvarint(data[prev:consumed])
					if k != consumed-prev || n <= uint64(max) {
						t.Fatalf("ErrBadSync for header % x with max %d", data[prev:consumed], max)
					}
				}
				break
			}
			if len(b) > max {
				t.Fatalf("readFrame returned %d bytes, max %d", len(b), max)
			}
			hdr := data[prev : consumed-len(b)]
			if n, k := binary.Uvarint(hdr); k != len(hdr) || n != uint64(len(b)) {
				t.Fatalf("frame of %d bytes behind header % x", len(b), hdr)
			}
			if !bytes.Equal(b, data[consumed-len(b):consumed]) {
				t.Fatal("frame bytes are not the input's")
			}
			prev = consumed
		}

		var w bytes.Buffer
		if err := writeFrame(&w, data); err != nil {
			t.Fatal(err)
		}
		got, err := readFrame(bufio.NewReader(bytes.NewReader(w.Bytes())), len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("writeFrame/readFrame round trip: %d bytes, %v", len(got), err)
		}
		if len(data) > 0 {
			if _, err := readFrame(bufio.NewReader(bytes.NewReader(w.Bytes())), len(data)-1); !errors.Is(err, ErrBadSync) {
				t.Fatalf("a frame one byte over max: %v, want ErrBadSync", err)
			}
		}
	})
}
