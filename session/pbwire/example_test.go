package pbwire_test

import (
	"fmt"

	"github.com/reprise-tool/reprise/session/pbwire"
	"github.com/reprise-tool/reprise/session/pbwire/pbtest"
)

// Read a message without its schema: an order with an id, a line
// (a nested message) and a total.
func ExampleParse() {
	msg := pbtest.Message(1, "ord_3f2a", 3, pbtest.Message(1, "sku-1", 2, uint64(2)), 4, uint64(1998))
	fields, err := pbwire.Parse(msg)
	if err != nil {
		panic(err)
	}
	var show func(indent string, fs []pbwire.Field)
	show = func(indent string, fs []pbwire.Field) {
		for _, f := range fs {
			switch f.Kind {
			case pbwire.Message:
				fmt.Printf("%s%d: message [%d:%d]\n", indent, f.Num, f.Value, f.End)
				show(indent+"  ", f.Fields)
			case pbwire.String:
				fmt.Printf("%s%d: %q\n", indent, f.Num, f.Bytes)
			default:
				fmt.Printf("%s%d: %s %d\n", indent, f.Num, f.Kind, f.Scalar)
			}
		}
	}
	show("", fields)
	// Output:
	// 1: "ord_3f2a"
	// 3: message [12:21]
	//   1: "sku-1"
	//   2: varint 2
	// 4: varint 1998
}
