package replay

import (
	"sync"
	"time"

	"github.com/reprise-tool/reprise/replay/htmlreport"
)

// sendStats gathers the figures taken at send time, which 'reprise check'
// compares with the recording: sends and refreshes per wall second, the
// gaps between consecutive sends, each clone's think times and length. It
// has its own lock so that the hot path does not wait on the report's.
type sendStats struct {
	mu          sync.Mutex
	start       time.Time
	perSecond   []uint64
	refreshes   []uint64
	last        time.Time
	inter       hist
	interScaled hist
	think       hist
	thinkScaled hist
	length      hist
}

func newSendStats() *sendStats {
	return &sendStats{inter: newHist(), interScaled: newHist(), think: newHist(), thinkScaled: newHist(), length: newHist()}
}

// sent counts one send at t; speed is the speed in force (0 under Max,
// when the scaled gap means nothing) and think the clone's think time
// before it (negative when it has none).
func (s *sendStats) sent(t time.Time, refresh bool, speed float64, think time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := int(t.Sub(s.start) / time.Second)
	if sec < 0 {
		sec = 0
	}
	sec = min(sec, htmlreport.MaxSeconds-1)
	for len(s.perSecond) <= sec {
		s.perSecond = append(s.perSecond, 0)
		s.refreshes = append(s.refreshes, 0)
	}
	s.perSecond[sec]++
	if refresh {
		s.refreshes[sec]++
	}
	// Sends taken by goroutines that race by a few microseconds may come
	// here out of order: such a gap counts as zero, and the later time
	// stays the reference.
	if !s.last.IsZero() {
		gap := max(t.Sub(s.last), 0)
		s.inter.record(gap)
		if speed > 0 {
			s.interScaled.record(time.Duration(float64(gap) * speed))
		}
	}
	if t.After(s.last) {
		s.last = t
	}
	if think >= 0 {
		s.think.record(think)
		if speed > 0 {
			s.thinkScaled.record(time.Duration(float64(think) * speed))
		}
	}
}

// session records one clone's length, first send to last completion.
func (s *sendStats) session(d time.Duration) {
	s.mu.Lock()
	s.length.record(d)
	s.mu.Unlock()
}

func (s *sendStats) fill(rep *Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep.PerSecond = append([]uint64{}, s.perSecond...)
	rep.RefreshesPerSecond = append([]uint64{}, s.refreshes...)
	rep.InterArrival = s.inter.summary(true)
	rep.InterArrivalScaled = s.interScaled.summary(true)
	rep.ThinkTime = s.think.summary(true)
	rep.ThinkTimeScaled = s.thinkScaled.summary(true)
	rep.SessionLength = s.length.summary(true)
}

// recent returns the sends in the last whole second before now.
func (s *sendStats) recent(now time.Time) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := int(now.Sub(s.start)/time.Second) - 1
	if sec < 0 || sec >= len(s.perSecond) {
		return 0
	}
	return s.perSecond[sec]
}
