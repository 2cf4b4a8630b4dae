package compare

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/pbwire/pbtest"
)

// grpcResp is a gRPC answer carrying msgs, with grpc-status in the trailer.
func grpcResp(status int, msgs ...[]byte) *session.Response {
	var body []byte
	for _, m := range msgs {
		body = append(body, 0)
		body = binary.BigEndian.AppendUint32(body, uint32(len(m)))
		body = append(body, m...)
	}
	return &session.Response{Status: 200, Proto: "HTTP/2.0", Header: session.Headers{{Name: "content-type", Value: "application/grpc"}},
		Body: body, BodySize: int64(len(body)), Trailer: session.Headers{{Name: "grpc-status", Value: fmt.Sprint(status)}}}
}

func protoResp(body []byte) *session.Response {
	return &session.Response{Status: 200, Header: session.Headers{{Name: "Content-Type", Value: "application/x-protobuf"}},
		Body: body, BodySize: int64(len(body))}
}

// order is an order message: id, customer, lines (sku, quantity).
func order(id, customer string, lines ...[]byte) []byte {
	m := pbtest.Message(1, id, 2, customer)
	for _, l := range lines {
		m = append(m, pbtest.Message(3, l)...)
	}
	return m
}

func line(sku string, qty uint64) []byte { return pbtest.Message(1, sku, 2, qty) }

func TestDiffProtobuf(t *testing.T) {
	cases := []struct {
		name string
		p, s *session.Response
		opts []Option
		want []string
	}{
		// The same message compares equal.
		{name: "same", p: grpcResp(0, order("ord_1", "ann", line("a", 1))), s: grpcResp(0, order("ord_1", "ann", line("a", 1)))},
		// A changed quantity in the first of two lines: indexed, since field 3 repeats.
		{name: "repeated", p: grpcResp(0, order("ord_1", "ann", line("a", 1), line("b", 2))), s: grpcResp(0, order("ord_1", "ann", line("a", 5), line("b", 2))),
			want: []string{"value:3[0].2"}},
		// A field that occurs once has no index; random ids of one shape are volatile.
		{name: "volatile", p: grpcResp(0, order("ord_3f2a9c81", "ann", line("a", 1))), s: grpcResp(0, order("ord_77b0e5d2", "bob", line("a", 1))),
			want: []string{"value:1~", "value:2"}},
		// A field the shadow lacks, one it adds, and a type change.
		{name: "shape", p: grpcResp(0, pbtest.Message(1, "x", 2, uint64(3))), s: grpcResp(0, pbtest.Message(2, "3", 4, uint64(1))),
			want: []string{"missing:1", "type:2", "extra:4"}},
		// grpc-status is compared: a failed call on the shadow.
		{name: "grpc status", p: grpcResp(0, pbtest.Message(1, "x")), s: grpcResp(5), want: []string{"status:grpc-status", "missing:[0]"}},
		// A stream: messages are indexed, the shadow sent one more.
		{name: "stream", p: grpcResp(0, pbtest.Message(1, uint64(1)), pbtest.Message(1, uint64(2))), s: grpcResp(0, pbtest.Message(1, uint64(1)), pbtest.Message(1, uint64(3)), pbtest.Message(1, uint64(4))),
			want: []string{"value:[1].1", "extra:[2]"}},
		// A protobuf body outside gRPC, nested three deep.
		{name: "x-protobuf", p: protoResp(pbtest.Message(1, pbtest.Message(3, pbtest.Message(2, uint64(7))))), s: protoResp(pbtest.Message(1, pbtest.Message(3, pbtest.Message(2, uint64(8))))),
			want: []string{"value:1.3.2"}},
		// Ignore patterns name field paths without "$".
		{name: "ignore", p: grpcResp(0, order("ord_1", "ann", line("a", 1), line("b", 2))), s: grpcResp(0, order("ord_2", "ann", line("a", 5), line("c", 2))),
			opts: []Option{WithIgnore("1", "3[*].2")}, want: []string{"value:3[1].1"}},
		// A body that is no protobuf message is compared as bytes.
		{name: "not protobuf", p: protoResp([]byte{0xff}), s: protoResp([]byte{0xfe}), want: []string{"body:body"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := paths(c.Diff(tc.p, tc.s, nil)); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// Protobuf paths learn noise as JSON paths do: a field that differs
// between two answers of the shadow is held back, a real change reported.
func TestProtobufNoise(t *testing.T) {
	c, err := New(WithHeuristics(false))
	if err != nil {
		t.Fatal(err)
	}
	const route = "POST /shop.Shop/GetOrder"
	for i := range 20 {
		p := grpcResp(0, pbtest.Message(1, fmt.Sprintf("n%d", i), 2, uint64(100)))
		s := grpcResp(0, pbtest.Message(1, fmt.Sprintf("n%d", i+7), 2, uint64(120)))
		c.Observe(route, c.Diff(p, s, nil))
		c.ObserveNoise(route, c.Diff(p, grpcResp(0, pbtest.Message(1, fmt.Sprintf("n%d", i+3), 2, uint64(100))), nil))
	}
	r := c.Report()
	if got := r.Reported(); !slices.Equal(got, []string{route + " 2"}) {
		t.Errorf("reported %q, want only the price, field 2", got)
	}
	if len(r.Routes) != 1 || len(r.Routes[0].Noise) != 1 || r.Routes[0].Noise[0].Path != "1" {
		t.Errorf("noise %+v, want field 1 held back", r.Routes)
	}
}

// FuzzCompareProtobuf: any two gRPC bodies compare without panicking, a
// body equals itself, and every difference names a path.
func FuzzCompareProtobuf(f *testing.F) {
	f.Add(order("ord_1", "ann", line("a", 1)), order("ord_2", "ann", line("a", 2), line("b", 1)))
	f.Add(pbtest.Message(1, pbtest.Message(3, pbtest.Message(2, uint64(7)))), []byte{0xff})
	c, err := New(WithIgnore("3[*].2"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		pa, pb := grpcResp(0, a), grpcResp(0, b)
		for _, d := range c.Diff(pa, pb, nil) {
			if d.Path == "" || d.Kind == "" {
				t.Fatalf("difference without a path or kind: %+v", d)
			}
		}
		if ds := c.Diff(pa, pa, nil); len(ds) != 0 {
			t.Fatalf("a body differs from itself: %+v", ds)
		}
		if ds := c.Diff(protoResp(a), protoResp(a), nil); len(ds) != 0 {
			t.Fatalf("a body differs from itself: %+v", ds)
		}
		c.Observe("POST /p.S/M", c.Diff(pa, pb, nil))
	})
}
