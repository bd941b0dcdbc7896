package share

import (
	"bytes"
	"testing"
)

// FuzzReadReplicateRequest: the replicate protocol's line reader never
// panics, never reads past its cap, and accepts only JSON.
func FuzzReadReplicateRequest(f *testing.F) {
	f.Add([]byte(`{"cid":"bafkreihdq6c2mlssmgn66u4vh6oan3fhh5hrvprxaznlysgjr5odtzxbje","size":16,"from":"12D3KooWGM9xKEMwXC3LW4r3utUJtHvqhU2UBB7RuX2yaxipmJgC"}` + "\n"))
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"size":-1}` + "\n"))
	f.Add(bytes.Repeat([]byte("a"), maxReplicateLine+10))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req ReplicateRequest
		r := bytes.NewReader(b)
		err := readJSONLine(r, &req)
		if read := len(b) - r.Len(); read > maxReplicateLine {
			t.Fatalf("read %d bytes, the cap is %d", read, maxReplicateLine)
		}
		if err == nil && bytes.IndexByte(b, '\n') < 0 {
			t.Fatal("accepted a request without its line end")
		}
	})
}
