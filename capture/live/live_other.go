//go:build !linux

package live

import (
	"context"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Source is not available on this system; Open returns ErrLinuxOnly.
type Source struct{}

// Open returns ErrLinuxOnly: AF_PACKET exists only on Linux.
func Open(ctx context.Context, cfg Config) (*Source, error) {
	if _, err := cfg.check(); err != nil {
		return nil, err
	}
	return nil, ErrLinuxOnly
}

// ReadPacketData returns ErrLinuxOnly.
func (s *Source) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	return nil, gopacket.CaptureInfo{}, ErrLinuxOnly
}

// LinkType returns the zero link type.
func (s *Source) LinkType() layers.LinkType { return 0 }

// Drops returns ErrLinuxOnly.
func (s *Source) Drops() (received, dropped uint64, err error) { return 0, 0, ErrLinuxOnly }

// Close does nothing.
func (s *Source) Close() error { return nil }

// Filter returns "".
func (s *Source) Filter() string { return "" }

// Ring returns "".
func (s *Source) Ring() (version string, notes []string) { return "", nil }
