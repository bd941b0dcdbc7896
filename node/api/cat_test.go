package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"
)

// catAPI answers Cat with data, cut after cut bytes when cut >= 0.
type catAPI struct {
	API
	data []byte
	cut  int
	res  GetResult
}

func (a catAPI) Cat(context.Context, string) (GetResult, CatBody, error) {
	var r io.Reader = bytes.NewReader(a.data)
	if a.cut >= 0 {
		r = io.MultiReader(io.LimitReader(r, int64(a.cut)), errReader{})
	}
	head := GetResult{Name: a.res.Name, CID: a.res.CID, Size: int64(len(a.data)), Provider: "first"}
	return head, &stubBody{r: r, res: a.res}, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("the transfer failed") }

// stubBody knows its result once it has returned io.EOF.
type stubBody struct {
	r   io.Reader
	eof bool
	res GetResult
}

func (b *stubBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.eof = b.eof || err == io.EOF
	return n, err
}

func (b *stubBody) Close() error { return nil }

func (b *stubBody) Result() (GetResult, bool) { return b.res, b.eof }

func catServer(t *testing.T, a catAPI) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(NewServer(a, "secret", nil))
	t.Cleanup(hs.Close)
	return hs
}

// The client's cat ends with the get's answer, a trailer: every field of
// it, names that are not ASCII included, and none before the end.
func TestCatResultTrailer(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 200_000)
	res := GetResult{Name: "dossier/résumé \"1\".txt", CID: "bafy", Size: int64(len(data)), Provider: "last",
		RTTMillis: 1.5, Millis: 20, Via: "relayed", ResumedFrom: 4096,
		Attempts: []Attempt{{Peer: "first", RTTMillis: 1, Bytes: 4096, Error: "stalled"}, {Peer: "last", RTTMillis: 1.5, Offset: 4096, Bytes: int64(len(data)) - 4096}}}
	hs := catServer(t, catAPI{data: data, cut: -1, res: res})
	head, body, err := NewClient(hs.URL, "secret").Cat(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if head.Size != int64(len(data)) || head.Name != res.Name || head.Provider != "first" {
		t.Fatalf("cat head = %+v", head)
	}
	if _, ok := body.Result(); ok {
		t.Fatal("the cat's result is there before its bytes are read")
	}
	got, err := io.ReadAll(body)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cat read %d bytes (%v), want %d", len(got), err, len(data))
	}
	fin, ok := body.Result()
	if !ok || !reflect.DeepEqual(fin, res) {
		t.Fatalf("cat result = %+v, %v; want %+v", fin, ok, res)
	}
}

// A stream cut short ends in an error on either framing, never in a clean
// end that would pass the bytes for the whole file.
func TestCatCutIsAnError(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 3<<20)
	hs := catServer(t, catAPI{data: data, cut: 1 << 20})
	t.Run("trailers", func(t *testing.T) {
		_, body, err := NewClient(hs.URL, "secret").Cat(context.Background(), "x")
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		got, err := io.ReadAll(body)
		if err == nil {
			t.Fatalf("a cut cat read %d bytes and ended cleanly", len(got))
		}
		if _, ok := body.Result(); ok {
			t.Fatal("a cut cat has a result")
		}
	})
	t.Run("length", func(t *testing.T) {
		req, _ := http.NewRequest("GET", hs.URL+PathPrefix+"cat?ref=x", nil)
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ContentLength != int64(len(data)) || resp.Header.Get(HeaderSize) != strconv.Itoa(len(data)) {
			t.Fatalf("a cat without trailers has length %d and size %q, want %d", resp.ContentLength, resp.Header.Get(HeaderSize), len(data))
		}
		if got, err := io.ReadAll(resp.Body); err == nil {
			t.Fatalf("a cut cat read %d bytes and ended cleanly", len(got))
		}
	})
}
