package infile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

type opts struct {
	Settings
	other int
}

type option func(*opts) error

// The shared options set the embedded Settings, in order, and a bad one
// stops Apply with an error naming the format.
func TestOptions(t *testing.T) {
	o := opts{Settings: Settings{MaxBody: 1 << 20, FirstConn: 1}}
	err := Apply(&o, []option{Name[opts]("a.gor"), MaxBody[opts]("gor", 10), FirstConnID[opts](7), func(o *opts) error { o.other = 1; return nil }})
	if err != nil || o.Settings != (Settings{Path: "a.gor", MaxBody: 10, FirstConn: 7}) || o.other != 1 {
		t.Fatalf("Apply: %v, %+v", err, o)
	}
	err = Apply(&o, []option{MaxBody[opts]("har", -1), FirstConnID[opts](99)})
	if err == nil || err.Error() != "har: MaxBody -1: give 0 or more" || o.FirstConn != 7 {
		t.Fatalf("bad MaxBody: %v, first conn %d", err, o.FirstConn)
	}
}

type reader struct {
	Closer
	data string
}

// Open hands the reader its file to close, and closes the file itself
// when the reader cannot be made.
func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	var file io.Reader
	r, err := Open(path, func(f io.Reader) (*reader, error) {
		file = f
		b, err := io.ReadAll(f)
		return &reader{data: string(b)}, err
	})
	if err != nil || r.data != "data" {
		t.Fatalf("Open: %v, %+v", err, r)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := file.(*os.File).Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after Close, the file is not closed: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	bad := errors.New("not this format")
	if _, err := Open(path, func(f io.Reader) (*reader, error) { file = f; return nil, bad }); err != bad {
		t.Fatalf("Open with a failing reader: %v", err)
	}
	if _, err := file.(*os.File).Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("a failed Open leaves the file open: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none"), func(io.Reader) (*reader, error) { return &reader{}, nil }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
