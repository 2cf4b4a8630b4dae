package capture_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/session"
)

// Reading a tcpdump capture as exchanges: open the files, build the
// pipeline, pull exchanges until io.EOF.
func ExampleFromPackets() {
	src, err := pcapfile.Open("testdata/tcpdump-lo.pcap")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	p, err := capture.FromPackets(context.Background(), src, capture.WithMaxBody(64<<10))
	if err != nil {
		log.Fatal(err)
	}
	for {
		x, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(x.Conn.ID, x.Index, x.Request.Method, x.Request.Target, x.Response.Status)
	}
	c := p.Counters()
	fmt.Println(c.Exchanges, "exchanges on", c.Connections, "connections")
	// Output:
	// 1 0 GET /items 200
	// 1 1 GET /stream 200
	// 1 2 GET /gz 200
	// 1 3 POST /cart 201
	// 1 4 HEAD /items 200
	// 1 5 DELETE /empty 204
	// 1 6 GET /cached 304
	// 2 0 GET /items?page=2 200
	// 8 exchanges on 2 connections
}

// Recording a tcpdump capture through the one recording loop: the
// pipeline is the source, a recording the sink. The Recorder's metadata
// starts the file; Record redacts, gives sessions, writes the final
// metadata and closes it.
func ExampleRecord() {
	src, err := pcapfile.Open("testdata/tcpdump-lo.pcap")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	p, err := capture.FromPackets(ctx, src)
	if err != nil {
		log.Fatal(err)
	}
	rd, err := redact.New(redact.Config{})
	if err != nil {
		log.Fatal(err)
	}
	rec, err := capture.NewRecorder(capture.WithRedactor(rd), capture.WithSessions(),
		capture.WithMetadata(session.Metadata{Source: "pcap:tcpdump-lo.pcap"}))
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer // a file from session.Create in a program
	w, err := session.NewWriter(&buf, rec.Metadata())
	if err != nil {
		log.Fatal(err)
	}
	res, err := rec.Record(ctx, p, w)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Counters.Exchanges, "exchanges on", res.Counters.Connections, "connections from", res.Metadata.Source)
	// Output:
	// 8 exchanges on 2 connections from pcap:tcpdump-lo.pcap
}
