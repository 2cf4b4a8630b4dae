package pbwire

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/reprise-tool/reprise/session/pbwire/pbtest"
)

func TestReplaceAt(t *testing.T) {
	long := strings.Repeat("x", 200) // a length that needs a 2-byte varint
	group := func(inner []byte) []byte {
		b := protowire.AppendTag(nil, 4, protowire.StartGroupType)
		return append(append(b, inner...), protowire.AppendTag(nil, 4, protowire.EndGroupType)...)
	}
	// A varint written longer than needed (150 as 3 bytes) must survive.
	padded := append(protowire.AppendTag(nil, 2, protowire.VarintType), 0x96, 0x81, 0x00)
	tests := []struct {
		name string
		in   []byte
		path Path
		v    string
		want []byte
	}{
		// Same length: the bytes change in place.
		{"same length", pbtest.Message(1, "ord_aaaa", 2, uint64(3)), Path{0}, "ord_bbbb",
			pbtest.Message(1, "ord_bbbb", 2, uint64(3))},
		// A longer id at the top level: its own length only.
		{"longer", pbtest.Message(1, "ord_1", 2, uint64(3)), Path{0}, "ord_123456789",
			pbtest.Message(1, "ord_123456789", 2, uint64(3))},
		// A shorter token nested two deep: both enclosing lengths shrink.
		{"nested shorter", pbtest.Message(1, pbtest.Message(5, pbtest.Message(1, "tok_abcdefghij", 2, uint64(7)), 6, "x"), 9, uint64(1)),
			Path{0, 0, 0}, "tok_a",
			pbtest.Message(1, pbtest.Message(5, pbtest.Message(1, "tok_a", 2, uint64(7)), 6, "x"), 9, uint64(1))},
		// Growing past 127 bytes makes every enclosing length a 2-byte varint.
		{"varint grows", pbtest.Message(3, pbtest.Message(1, "short-value")), Path{0, 0}, long,
			pbtest.Message(3, pbtest.Message(1, long))},
		// And shrinking back makes them one byte again.
		{"varint shrinks", pbtest.Message(3, pbtest.Message(1, long)), Path{0, 0}, "short-value",
			pbtest.Message(3, pbtest.Message(1, "short-value"))},
		// A field inside a proto2 group: the group has no length to fix.
		{"in a group", append(group(pbtest.Message(1, "in-group-value")), pbtest.Message(2, "after")...), Path{0, 0}, "v2",
			append(group(pbtest.Message(1, "v2")), pbtest.Message(2, "after")...)},
		// The other fields keep their bytes, a padded varint included.
		{"keeps others", append(pbtest.Message(1, "abc"), padded...), Path{0}, "abcdef",
			append(pbtest.Message(1, "abcdef"), padded...)},
		// Replacing a whole nested message.
		{"whole message", pbtest.Message(1, pbtest.Message(1, uint64(1)), 2, "z"), Path{0}, string(pbtest.Message(1, uint64(300))),
			pbtest.Message(1, pbtest.Message(1, uint64(300)), 2, "z")},
		// An empty value.
		{"to empty", pbtest.Message(1, pbtest.Message(1, "gone-value")), Path{0, 0}, "",
			pbtest.Message(1, pbtest.Message(1, ""))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReplaceAt(tc.in, tc.path, []byte(tc.v))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got  %x\nwant %x", got, tc.want)
			}
		})
	}
}

// ReplaceAt says what is wrong rather than guessing.
func TestReplaceAtErrors(t *testing.T) {
	msg := pbtest.Message(1, "ord_1", 2, uint64(3))
	for _, tc := range []struct {
		name string
		in   []byte
		path Path
	}{
		{"no such field", msg, Path{5}},          // past the message's fields
		{"a varint", msg, Path{1}},               // not length-delimited
		{"below a string", msg, Path{0, 0}},      // a string has no fields
		{"not a message", []byte{0x0f}, Path{0}}, // reserved wire type
		{"empty path", msg, nil},                 // names no field
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := ReplaceAt(tc.in, tc.path, []byte("v")); err == nil {
				t.Errorf("no error; got %x", out)
			}
		})
	}
}

// Rewrite replaces by value everywhere in one pass and counts; with
// nothing replaced the message comes out byte for byte.
func TestRewrite(t *testing.T) {
	msg := pbtest.Message(1, "tok_1", 2, pbtest.Message(1, "tok_1", 3, "keep"), 4, "tok_1")
	fs, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	out, n, err := Rewrite(nil, msg, fs, func(f *Field) ([]byte, bool) {
		return []byte("tok_2222222"), string(f.Bytes) == "tok_1"
	})
	want := pbtest.Message(1, "tok_2222222", 2, pbtest.Message(1, "tok_2222222", 3, "keep"), 4, "tok_2222222")
	if err != nil || n != 3 || !bytes.Equal(out, want) {
		t.Errorf("%d replaced, err %v:\ngot  %x\nwant %x", n, err, out, want)
	}
	same, n, err := Rewrite([]byte("prefix"), msg, fs, func(*Field) ([]byte, bool) { return nil, false })
	if err != nil || n != 0 || string(same) != "prefix"+string(msg) {
		t.Errorf("nothing replaced: %d, %v, %x", n, err, same)
	}
	// Fields of another buffer are refused.
	if _, _, err := Rewrite(nil, msg[:3], fs, func(*Field) ([]byte, bool) { return nil, false }); err == nil {
		t.Error("fields outside the message: no error")
	}
}

// rawFields splits b into its fields with protowire alone (no
// classification): each field's whole bytes, and the bytes inside it for
// a length-delimited one or a group.
func rawFields(b []byte) (raw, inner [][]byte, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, false
		}
		var in []byte
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, nil, false
		}
		switch typ {
		case protowire.BytesType:
			in, _ = protowire.ConsumeBytes(b[n:])
		case protowire.StartGroupType:
			in, _ = protowire.ConsumeGroup(num, b[n:])
		}
		raw, inner = append(raw, b[:n+m]), append(inner, in)
		b = b[n+m:]
	}
	return raw, inner, true
}

// checkReplaced checks out against msg along p: at each level every field
// but the one on the path keeps its bytes, and the field at p holds v.
func checkReplaced(t *testing.T, msg, out []byte, p Path, v []byte) {
	t.Helper()
	for depth, i := range p {
		r1, in1, ok1 := rawFields(msg)
		r2, in2, ok2 := rawFields(out)
		if !ok1 || !ok2 || len(r1) != len(r2) || i >= len(r1) {
			t.Fatalf("level %d: %d fields (%v) before, %d (%v) after", depth, len(r1), ok1, len(r2), ok2)
		}
		for k := range r1 {
			if k != i && !bytes.Equal(r1[k], r2[k]) {
				t.Fatalf("level %d: field %d changed from %x to %x", depth, k, r1[k], r2[k])
			}
		}
		msg, out = in1[i], in2[i]
	}
	if !bytes.Equal(out, v) {
		t.Fatalf("value at %v is %x, want %x", p, out, v)
	}
}

// paths lists the paths of the length-delimited fields of fs, in order.
func paths(fs []Field, prefix Path, out []Path) []Path {
	for i, f := range fs {
		p := append(append(Path(nil), prefix...), i)
		if f.Kind.LengthDelimited() {
			out = append(out, p)
		}
		out = paths(f.Fields, p, out)
	}
	return out
}

func FuzzRewrite(f *testing.F) {
	f.Add(pbtest.Message(1, "tok_abc", 2, pbtest.Message(1, "ord_1", 2, uint64(5))), uint8(2), []byte("ord_123456789"))
	f.Add(pbtest.Message(3, pbtest.Message(1, strings.Repeat("y", 130))), uint8(1), []byte("y"))
	f.Add([]byte{0x23, 0x0a, 0x01, 0x41, 0x24}, uint8(0), []byte(strings.Repeat("z", 300)))
	f.Fuzz(func(t *testing.T, msg []byte, pick uint8, v []byte) {
		fs, err := Parse(msg)
		if err != nil {
			return
		}
		all := paths(fs, nil, nil)
		if len(all) == 0 {
			return
		}
		p := all[int(pick)%len(all)]
		out, err := ReplaceAt(msg, p, v)
		if err != nil {
			t.Fatalf("path %v of %x: %v", p, msg, err)
		}
		checkReplaced(t, msg, out, p, v)
		if _, err := Parse(out); err != nil {
			t.Fatalf("rewritten message does not parse: %v (%x)", err, out)
		}
	})
}

// Fields altered by hand are refused, never a panic.
func TestRewriteBadFields(t *testing.T) {
	msg := pbtest.Message(1, "abc", 2, pbtest.Message(1, "def"))
	for name, bad := range map[string]func(fs []Field){
		"end past the message": func(fs []Field) { fs[0].End = 99 },
		"bytes past the end":   func(fs []Field) { fs[0].Bytes = make([]byte, 50) },
		"no tag":               func(fs []Field) { fs[0].Value = fs[0].Start },
		"nested outside":       func(fs []Field) { fs[1].Fields[0].Start = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			fs, err := Parse(msg)
			if err != nil {
				t.Fatal(err)
			}
			bad(fs)
			if _, _, err := Rewrite(nil, msg, fs, func(f *Field) ([]byte, bool) { return []byte("x"), f.Kind == String }); err == nil {
				t.Error("no error")
			}
		})
	}
}
