package tlsdecrypt_test

import (
	"fmt"
	"strings"

	"github.com/reprise-tool/reprise/capture/tlsdecrypt"
)

// A key log is read once (pcap files) or followed as it grows (live
// capture); lines it cannot use are counted and named, never fatal.
func ExampleKeyLog() {
	k := tlsdecrypt.NewKeyLog()
	k.Read("keys.log", strings.NewReader(
		"# written by SSLKEYLOGFILE\n"+
			"CLIENT_RANDOM "+strings.Repeat("ab", 32)+" "+strings.Repeat("01", 48)+"\n"+
			"a line from another program\n"))
	st := k.Stats()
	fmt.Println(st.Connections, "connection,", st.Bad, "bad line:", st.FirstBad[0])
	// Output: 1 connection, 1 bad line: keys.log:3: 5 fields, want 3 (LABEL CLIENT_RANDOM SECRET)
}

// A Conn follows one TCP connection's two byte streams (as reassembly
// hands them over) and passes on each side's plaintext.
func ExampleNew() {
	k := tlsdecrypt.NewKeyLog()
	c := tlsdecrypt.New(tlsdecrypt.Config{Keys: k, Name: "conn 1"}, func(side int, data []byte, ts int64) {
		fmt.Printf("side %d sent %q\n", side, data)
	})
	// Feed each side's bytes in order: c.Feed(0, clientBytes, ts),
	// c.Feed(1, serverBytes, ts), ... then Close.
	c.Feed(0, []byte("\x16\x03\x01\x00\x08\x01\x00\x00\x04abcd"), 0) // a ClientHello cut short
	c.Close()
	fmt.Println(c.State() == tlsdecrypt.Stopped, c.Err())
	// Output: true tlsdecrypt: conn 1 side 0 offset 0: corrupt record: malformed ClientHello
}
