package correlate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// FuzzRewrite feeds arbitrary responses and requests through a table: it
// must never panic, never touch the recorded request, and keep a valid
// JSON body valid.
func FuzzRewrite(f *testing.F) {
	f.Add(`{"access_token":"RECORDED-ACCESS-TOKEN-1","id":7}`, `{"access_token":"LIVE","id":8}`, "/a/7?x=7", "application/json", `{"id":7,"s":"RECORDED-ACCESS-TOKEN-1"}`)
	f.Add(`{"a":[1,2,{"id":"x"}]}`, `{"a":[1]}`, "/%zz/x", "application/x-www-form-urlencoded", "a=%zz&id=x")
	f.Add(`"str"`, `{}`, "/", "text/plain", "RECORDED-ACCESS-TOKEN-1")
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
		ApplyCredentials(&req, Credential{User: "u", Password: "p"})
	})
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
