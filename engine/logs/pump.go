package logs

import "sync"

// readSize is a pump's read buffer: big enough that a flooding child's output moves
// in few system calls (a 1 MiB pipe empties in one read).
const readSize = 1 << 20

// bufPool holds the pumps' buffers. A pump holds one only while bytes move, never
// across an idle wait or a coalescing pause, so a daemon holds about one per pipe
// being drained at that instant, not one per program.
var bufPool = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}
