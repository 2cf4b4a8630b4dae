package session

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// dumpV10 writes every field a format 1.0 exchange record holds, so a
// digest of the dump pins what a 1.0 file decodes to.
func dumpV10(h hash.Hash, ex *Exchange) {
	fmt.Fprintf(h, "%d %d %d %v %v %+v %d\n", ex.Flags, ex.Conn.ID, ex.Index, ex.Conn.Client, ex.Conn.Server, ex.Timing, len(ex.Warnings))
	fmt.Fprintf(h, "%q %q %q %q %d %x\n", ex.Request.Method, ex.Request.Target, ex.Request.Proto, ex.Request.Header, ex.Request.BodySize, ex.Request.Body)
	fmt.Fprintf(h, "%q %d %q %q %d %x\n", ex.Response.Proto, ex.Response.Status, ex.Response.Reason, ex.Response.Header, ex.Response.BodySize, ex.Response.Body)
	fmt.Fprintf(h, "%q %q %+v\n", ex.Session, ex.Warnings, ex.Tokens)
}

// TestReadsFormat10 reads a recording written by format 1.0 (the shop
// fixture as recorded before HTTP/2 was added) and checks it decodes to the
// same exchanges as it did then, with none of the later fields set.
func TestReadsFormat10(t *testing.T) {
	const golden = "testdata/v1.0.rpz.sha256"
	f, err := os.Open("testdata/v1.0.rpz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n := 0
	for {
		ex, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		dumpV10(h, ex)
		checkNoV11Fields(t, ex)
	}
	got := fmt.Sprintf("%d %x\n", n, h.Sum(nil))
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("format 1.0 file decodes differently:\ngot  %swant %s", got, want)
	}
	if n == 0 || strings.HasPrefix(got, "0 ") {
		t.Fatal("no exchanges read")
	}
}

func checkNoV11Fields(t *testing.T, ex *Exchange) {
	t.Helper()
	if ex.Conn.Protocol != ProtoHTTP1 || ex.Stream != nil || ex.Request.Trailer != nil || ex.Response.Trailer != nil {
		t.Fatalf("a 1.0 record decoded with 1.1 fields: %v %+v", ex.Conn.Protocol, ex.Stream)
	}
}

// TestHTTP2FieldsRoundTrip writes the fields format 1.1 added and reads
// them back, reusing one Exchange the way Reader.Read does, so fields of an
// HTTP/2 record never leak into the HTTP/1 record read after it.
func TestHTTP2FieldsRoundTrip(t *testing.T) {
	h2 := &Exchange{
		Conn:    Conn{ID: 7, Protocol: ProtoH2C},
		Index:   2,
		Request: Request{Method: "POST", Target: "/shop.Shop/Login", Proto: "HTTP/2.0", Header: Headers{{":authority", "x"}, {"content-type", "application/grpc"}}, Body: []byte{0, 0, 0, 0, 1, 9}, BodySize: 6, Trailer: Headers{{"x-req-end", "1"}}},
		Response: Response{Proto: "HTTP/2.0", Status: 200, Header: Headers{{"content-type", "application/grpc"}},
			Trailer: Headers{{"grpc-status", "16"}, {"grpc-message", "token expired"}}},
		Timing: Timing{RequestStart: 1e18, RequestEnd: 1e18 + 5, ResponseStart: 1e18 + 9, ResponseEnd: 1e18 + 20},
		Stream: &Stream{
			ID:      5,
			Interim: []Interim{{Status: 103, Header: Headers{{"link", "</a>"}}}},
			Reset:   Abort{By: PartyClient, Code: 8},
			GoAway:  Abort{By: PartyServer, Code: 0},
			Pushes:  1,
			GRPC: &GRPC{Status: 16, HasStatus: true, StatusMessage: "token expired", Messages: []Message{
				{Size: 1, At: 4}, {FromServer: true, Compressed: true, Size: 300, At: 19}}},
		},
	}
	h1 := &Exchange{Conn: Conn{ID: 8}, Request: Request{Method: "GET", Target: "/", Proto: "HTTP/1.1"}, Response: Response{Proto: "HTTP/1.1", Status: 204}}
	var ex Exchange
	for _, want := range []*Exchange{h2, h1, h2} {
		rec := encodeExchange(nil, want, DefaultBodyCap)
		if err := decodeExchange(rec, &ex); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v %+v %+v", ex.Conn, ex.Request.Trailer, ex.Response.Trailer) != fmt.Sprintf("%+v %+v %+v", want.Conn, want.Request.Trailer, want.Response.Trailer) {
			t.Errorf("got %+v, want %+v", ex.Conn, want.Conn)
		}
		if (ex.Stream == nil) != (want.Stream == nil) {
			t.Fatalf("stream %+v, want %+v", ex.Stream, want.Stream)
		}
		if want.Stream != nil {
			if !reflect.DeepEqual(ex.Stream, want.Stream) {
				t.Errorf("stream\n got %+v %+v\nwant %+v %+v", *ex.Stream, *ex.Stream.GRPC, *want.Stream, *want.Stream.GRPC)
			}
		}
	}
	// An HTTP/1 exchange without trailers is encoded exactly as in 1.0.
	rec := encodeExchange(nil, h1, DefaultBodyCap)
	h1.Conn.Protocol = ProtoH2C
	if ext := encodeExchange(nil, h1, DefaultBodyCap); len(ext) <= len(rec) {
		t.Errorf("extension not written: %d <= %d bytes", len(ext), len(rec))
	}
}
