package engine

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

type countingSampler struct{ n atomic.Int32 }

func (c *countingSampler) Sample(pid int) (Usage, error) {
	c.n.Add(1)
	return Usage{RSSBytes: uint64(c.n.Load())}, nil
}

// Nobody reads Status: nothing is sampled. A Status call samples at once, then every
// 2 s for a minute, then sampling stops again.
func TestSamplingOnlyWhileWatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &countingSampler{}
		r := newRig(t, func(o *Options) { o.Sampler = c })
		defer r.shutdown()
		r.apply(planOf(t, prog("a")))
		time.Sleep(10 * time.Minute)
		if n := c.n.Load(); n != 0 {
			t.Fatalf("%d samples while nobody looked", n)
		}
		if u := r.status("a").Usage; u != (Usage{}) {
			t.Errorf("first Status: usage %+v, want none yet (Status never waits)", u)
		}
		synctest.Wait() // the sample it asked for
		if u := r.status("a").Usage; u.RSSBytes != 1 {
			t.Errorf("second Status: usage %+v, want the fresh sample", u)
		}
		time.Sleep(9 * time.Second)
		if n := c.n.Load(); n != 5 { // at 0, 2, 4, 6, 8 s
			t.Errorf("%d samples in the 9 s after a Status call, want 5", n)
		}
		time.Sleep(10 * time.Minute)
		if n := c.n.Load(); n > 32 {
			t.Errorf("%d samples: still sampling long after the last Status call", n)
		}
		before := c.n.Load()
		time.Sleep(10 * time.Minute)
		if n := c.n.Load(); n != before {
			t.Errorf("sampling went on unwatched: %d -> %d", before, n)
		}
	})
}
