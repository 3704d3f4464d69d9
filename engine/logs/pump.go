package logs

import "sync"

// A pump reads into a small buffer, and into a big one while a read fills the small
// one: a flooding child's output then moves in few system calls (a 1 MiB pipe
// empties in one read), while ordinary chatter never makes a megabyte resident.
const (
	smallRead = 64 << 10
	bigRead   = 1 << 20
)

// The pools hold the pumps' buffers. A pump holds one only while bytes move, never
// across an idle wait or a coalescing pause, so a daemon holds about one per pipe
// being drained at that instant, not one per program.
var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallRead); return &b }}
	bigBufs   = sync.Pool{New: func() any { b := make([]byte, bigRead); return &b }}
)
