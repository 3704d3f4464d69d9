package logs

import "bytes"

// StampLayout is the time prefixed to each line when timestamps are on
// (RFC 3339 with milliseconds), followed by one space.
const StampLayout = "2006-01-02T15:04:05.000Z07:00"

// stamp returns p with the read time before each line start. A line split
// across writes is stamped once, by the write that began it. Called with mu held.
func (f *File) stamp(p []byte) []byte {
	buf := f.stampBuf[:0]
	var ts []byte
	mid := f.partial // the last write left its line open: no stamp before its rest
	for len(p) > 0 {
		if !mid {
			if ts == nil {
				ts = f.now().AppendFormat(make([]byte, 0, 40), StampLayout)
				ts = append(ts, ' ')
			}
			buf = append(buf, ts...)
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			buf = append(buf, p...)
			break
		}
		buf = append(buf, p[:i+1]...)
		mid = false
		p = p[i+1:]
	}
	if cap(buf) <= 1<<20 {
		f.stampBuf = buf // reuse, but do not pin a huge buffer
	}
	return buf
}
