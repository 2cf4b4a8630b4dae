package replay

import (
	"sync"
	"sync/atomic"
	"time"
)

// sendStats gathers the figures taken at send time, which 'reprise check'
// compares with the recording: sends and refreshes per wall second, the
// gaps between consecutive sends, each clone's think times and length. It
// has its own lock so that the hot path does not wait on the report's.
type sendStats struct {
	// last is the latest send's time, Unix ns: the gaps between sends
	// are taken from it as each request goes, the rest later in batches
	// (see record).
	last atomic.Int64

	mu          sync.Mutex
	start       time.Time
	perSecond   []uint64
	refreshes   []uint64
	inter       hist
	interScaled hist
	think       hist
	thinkScaled hist
	length      hist
}

func newSendStats() *sendStats {
	return &sendStats{inter: newHist(), interScaled: newHist(), think: newHist(), thinkScaled: newHist(), length: newHist()}
}

// sendRecord is one send's figures: when, whether it refreshed a token,
// the speed in force (0 under Max, when scaled gaps mean nothing), the
// gap since the send before it (negative for the first send) and the
// clone's think time before it (negative when it has none).
type sendRecord struct {
	at         time.Time
	refresh    bool
	speed      float64
	gap, think time.Duration
}

// sent takes the gap since the latest send and returns the send's
// figures, for record. Sends taken by goroutines that race by a few
// microseconds may come here out of order: such a gap counts as zero,
// and the later time stays the reference.
func (s *sendStats) sent(t time.Time, refresh bool, speed float64, think time.Duration) sendRecord {
	rec := sendRecord{at: t, refresh: refresh, speed: speed, think: think, gap: -1}
	now := t.UnixNano()
	for {
		prev := s.last.Load()
		if now <= prev {
			rec.gap = 0
			break
		}
		if s.last.CompareAndSwap(prev, now) {
			if prev != 0 {
				rec.gap = time.Duration(now - prev)
			}
			break
		}
	}
	return rec
}

// record counts sends whose figures sent took.
func (s *sendStats) record(recs []sendRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		sec := int(r.at.Sub(s.start) / time.Second)
		if sec < 0 {
			sec = 0
		}
		sec = min(sec, MaxSeconds-1)
		for len(s.perSecond) <= sec {
			s.perSecond = append(s.perSecond, 0)
			s.refreshes = append(s.refreshes, 0)
		}
		s.perSecond[sec]++
		if r.refresh {
			s.refreshes[sec]++
		}
		if r.gap >= 0 {
			s.inter.record(r.gap)
			if r.speed > 0 {
				s.interScaled.record(time.Duration(float64(r.gap) * r.speed))
			}
		}
		if r.think >= 0 {
			s.think.record(r.think)
			if r.speed > 0 {
				s.thinkScaled.record(time.Duration(float64(r.think) * r.speed))
			}
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
	return lastWholeSecond(s.perSecond, s.start, now)
}

// lastWholeSecond returns the count, of per-second counts from start, for
// the last whole second before now.
func lastWholeSecond(perSecond []uint64, start, now time.Time) uint64 {
	sec := int(now.Sub(start)/time.Second) - 1
	if sec < 0 || sec >= len(perSecond) {
		return 0
	}
	return perSecond[sec]
}

// dueCounts counts requests by the wall second they were due in, for the
// live view's intended rate beside the achieved one: a target that keeps
// up shows the two alike, one that falls behind shows the gap. Only the
// dispatcher adds; the live loop reads once a second.
type dueCounts struct {
	mu        sync.Mutex
	start     time.Time
	perSecond []uint64
}

func (d *dueCounts) add(due time.Time) {
	sec := int(due.Sub(d.start) / time.Second)
	if sec < 0 || sec >= MaxSeconds {
		return
	}
	d.mu.Lock()
	for len(d.perSecond) <= sec {
		d.perSecond = append(d.perSecond, 0)
	}
	d.perSecond[sec]++
	d.mu.Unlock()
}

// recent returns the requests due in the last whole second before now.
func (d *dueCounts) recent(now time.Time) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return lastWholeSecond(d.perSecond, d.start, now)
}
