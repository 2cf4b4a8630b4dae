package session_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/reprise-tool/reprise/session"
)

// Write a recording, then read it back, carrying on past any damage.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "traffic.rpz")

	w, err := session.Create(path, session.Metadata{Source: "proxy:127.0.0.1:9000"})
	if err != nil {
		log.Fatal(err)
	}
	for i := range 3 {
		w.WriteExchange(&session.Exchange{
			Request:  session.Request{Method: "GET", Target: fmt.Sprintf("/items/%d", i), Proto: "HTTP/1.1"},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200, Reason: "OK"},
			Timing:   session.Timing{RequestStart: int64(i)},
		})
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	r, err := session.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for {
		ex, err := r.Next()
		if err == io.EOF {
			break
		}
		var damage *session.CorruptError
		if errors.As(err, &damage) {
			fmt.Println("skipped damage:", damage)
			continue // the reader has already moved to the next good block
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ex.Request.Method, ex.Request.Target, ex.Response.Status)
	}
	fmt.Println("source:", r.Metadata()[0].Source)
	// Output:
	// GET /items/0 200
	// GET /items/1 200
	// GET /items/2 200
	// source: proxy:127.0.0.1:9000
}

// Rotate a live recording every 100 MiB, flushing at least once a second so
// that a crash loses at most the last second; read the parts back as one.
func ExampleCreate() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	w, err := session.Create(filepath.Join(dir, "live.rpz"), session.Metadata{Source: "iface:eth0"},
		session.RotateSize(100<<20), session.FlushInterval(session.LiveFlushInterval))
	if err != nil {
		log.Fatal(err)
	}
	w.WriteExchange(&session.Exchange{Request: session.Request{Method: "GET", Target: "/"}})
	w.UpdateCounters(session.Counters{PacketsSeen: 2, Exchanges: 1})
	w.Close()

	r, err := session.Open(filepath.Join(dir, "live.*.rpz"))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	n, err := session.Copy(discard{}, r)
	fmt.Println(filepath.Base(r.Paths()[0]), n, err, r.Metadata()[0].Counters.PacketsSeen)
	// Output: live.0001.rpz 1 <nil> 2
}

type discard struct{}

func (discard) WriteExchange(*session.Exchange) error { return nil }
