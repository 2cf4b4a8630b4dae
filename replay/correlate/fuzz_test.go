package correlate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/pbwire/pbtest"
)

// FuzzRewrite feeds arbitrary responses and requests through a table: it
// must never panic, never touch the recorded request, and keep a valid
// JSON body valid.
func FuzzRewrite(f *testing.F) {
	f.Add(`{"access_token":"RECORDED-ACCESS-TOKEN-1","id":7}`, `{"access_token":"LIVE","id":8}`, "/a/7?x=7", "application/json", `{"id":7,"s":"RECORDED-ACCESS-TOKEN-1"}`)
	f.Add(`{"a":[1,2,{"id":"x"}]}`, `{"a":[1]}`, "/%zz/x", "application/x-www-form-urlencoded", "a=%zz&id=x")
	f.Add(`"str"`, `{}`, "/", "text/plain", "RECORDED-ACCESS-TOKEN-1")
	// A gRPC body whose id, learned from JSON, shrinks inside a nested message.
	f.Add(`{"order_id":"ord_0123456789abcdef0123"}`, `{"order_id":"o"}`, "/shop.Shop/GetOrder", "application/grpc",
		string(frame(false, pbtest.Message(1, pbtest.Message(1, "ord_0123456789abcdef0123")), pbtest.Message(2, uint64(1)))))
	f.Fuzz(func(t *testing.T, rec, live, target, ctype, body string) {
		tb := NewTable()
		tb.Learn(jsonResp(rec), jsonResp(live))
		req := session.Request{Method: "POST", Target: target, Body: []byte(body),
			Header: session.Headers{{Name: "Content-Type", Value: ctype}, {Name: "Cookie", Value: "a=" + body}, {Name: "Authorization", Value: "Bearer " + body}}}
		before := bytes.Clone(req.Body)
		got, _ := tb.Rewrite(&req)
		if !bytes.Equal(req.Body, before) {
			t.Fatal("recorded body modified")
		}
		if strings.HasSuffix(ctype, "json") && json.Valid([]byte(body)) && !json.Valid(got.Body) {
			t.Fatalf("valid JSON %q became invalid %q", body, got.Body)
		}
		if strings.HasPrefix(ctype, "application/grpc") && grpcMessages(got.Body) < grpcMessages(req.Body) {
			t.Fatalf("gRPC body of %d whole messages became %d: %x", grpcMessages(req.Body), grpcMessages(got.Body), got.Body)
		}
		ApplyCredentials(&req, Credential{User: "u", Password: "p"})
	})
}

// grpcMessages counts the whole length-prefixed messages at the start of b.
func grpcMessages(b []byte) int {
	n := 0
	for len(b) >= 5 {
		size := uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
		if size > uint64(len(b)-5) {
			break
		}
		b = b[5+size:]
		n++
	}
	return n
}

// FuzzParseCredentials checks the credentials reader never panics and
// names a line in every error but the empty-file one.
func FuzzParseCredentials(f *testing.F) {
	for _, s := range []string{"alice,pw\n", "user,password\nbob,x", "a,b,c", "\"unterminated", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		creds, err := ParseCredentials(strings.NewReader(s))
		if err == nil {
			for _, c := range creds {
				if c.User == "" {
					t.Fatal("empty user accepted")
				}
			}
		}
	})
}
