package pbwire

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/reprise-tool/reprise/session/pbwire/pbtest"
)

// dump writes fields as "num:kind=value" for comparison in tests.
func dump(fs []Field) string {
	var parts []string
	for _, f := range fs {
		s := fmt.Sprintf("%d:%s", f.Num, f.Kind)
		switch f.Kind {
		case Varint, Fixed32, Fixed64:
			s += fmt.Sprintf("=%d", f.Scalar)
		case String:
			s += fmt.Sprintf("=%q", f.Bytes)
		case Bytes:
			s += fmt.Sprintf("=%x", f.Bytes)
		case Message, Group:
			s += "{" + dump(f.Fields) + "}"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestParse(t *testing.T) {
	group := protowire.AppendTag(nil, 4, protowire.StartGroupType)
	group = append(append(group, pbtest.Message(1, uint64(9))...), protowire.AppendTag(nil, 4, protowire.EndGroupType)...)
	tests := []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		// The four wire types.
		{"scalars", pbtest.Message(1, uint64(150), 2, uint32(7), 3, float64(1<<40)), "1:varint=150 2:fixed32=7 3:fixed64=1099511627776", nil},
		// A nested message, an order with its lines.
		{"nested", pbtest.Message(1, "ord_3f2a", 3, pbtest.Message(1, uint64(2), 2, "sku-1"), 3, pbtest.Message(1, uint64(1))),
			`1:string="ord_3f2a" 3:message{1:varint=2 2:string="sku-1"} 3:message{1:varint=1}`, nil},
		// Printable text that happens to parse as a message stays a string.
		{"text", pbtest.Message(1, "hi"), `1:string="hi"`, nil},
		// Text with a line break parses as no message: a string still.
		{"lines", pbtest.Message(1, "a\nb c\n"), `1:string="a\nb c\n"`, nil},
		// Packed varints do not parse as a message: bytes.
		{"packed", pbtest.Message(5, []byte{1, 2, 3}), "5:bytes=010203", nil},
		// Binary that is no message and no text: bytes.
		{"binary", pbtest.Message(2, []byte{0xff, 0x00, 0x01}), "2:bytes=ff0001", nil},
		// An empty length-delimited value is read as an empty message.
		{"empty", pbtest.Message(2, ""), "2:message{}", nil},
		// A proto2 group.
		{"group", group, "4:group{1:varint=9}", nil},
		// The empty message.
		{"nothing", nil, "", nil},
		// Field number 0, a reserved wire type, a cut value, a lone end-group.
		{"field 0", []byte{0x00, 0x01}, "", ErrMalformed},
		{"wire type 7", []byte{0x0f}, "", ErrMalformed},
		{"cut", pbtest.Message(1, "hello")[:4], "", ErrMalformed},
		{"end group", protowire.AppendTag(nil, 1, protowire.EndGroupType), "", ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := Parse(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if got := dump(fs); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if err == nil {
				checkTiling(t, tc.in, fs, 0, len(tc.in))
			}
		})
	}
}

// Nesting deeper than MaxDepth is not read as messages: the innermost
// value comes back as bytes or text, never an error or a stack overflow.
func TestParseDeep(t *testing.T) {
	b := pbtest.Message(1, uint64(1))
	for range 2 * MaxDepth {
		b = pbtest.Message(1, b)
	}
	fs, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	d := 0
	for len(fs) == 1 && fs[0].Kind == Message {
		fs, d = fs[0].Fields, d+1
	}
	if d > MaxDepth+1 {
		t.Errorf("read %d levels, more than MaxDepth %d", d, MaxDepth)
	}
}

// Too many fields end the reading with ErrTooLarge.
func TestParseBudget(t *testing.T) {
	b := []byte(strings.Repeat(string(pbtest.Message(1, uint64(1))), MaxFields+1))
	if _, err := Parse(b); !errors.Is(err, ErrTooLarge) {
		t.Errorf("error %v, want ErrTooLarge", err)
	}
}

// checkTiling checks that the fields cover buf[from:to] exactly, in order,
// and that their offsets point at their values.
func checkTiling(t *testing.T, buf []byte, fs []Field, from, to int) {
	t.Helper()
	at := from
	for _, f := range fs {
		if f.Start != at || f.Value <= f.Start || f.End < f.Value || f.End > to {
			t.Fatalf("field %d at [%d %d %d], want start %d within %d", f.Num, f.Start, f.Value, f.End, at, to)
		}
		if f.Kind.LengthDelimited() && string(buf[f.Value:f.End]) != string(f.Bytes) {
			t.Fatalf("field %d: bytes at [%d:%d] are not its value", f.Num, f.Value, f.End)
		}
		if f.Kind == Message {
			checkTiling(t, buf, f.Fields, f.Value, f.End)
		}
		at = f.End
	}
	if at != to {
		t.Fatalf("fields end at %d, want %d", at, to)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(pbtest.Message(1, uint64(150), 2, "ord_1", 3, pbtest.Message(1, uint64(2), 2, "sku")))
	f.Add(pbtest.Message(5, []byte{1, 2, 3}, 6, uint32(1), 7, float64(2)))
	f.Add([]byte{0x23, 0x08, 0x01, 0x24})
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := Parse(b)
		if err != nil {
			return
		}
		checkTiling(t, b, fs, 0, len(b))
	})
}
