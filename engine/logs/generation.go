package logs

import (
	"os"
	"sync"
	"syscall"
)

// Why: a follower (logs -f) whose file was rotated out of reach goes on in the current
// file, and must say whether it skipped files in between. The disk cannot tell it in
// the middle of a rotation: the oldest backup is removed before the current file is
// renamed, and a follower looking then found no gap where thousands of lines had gone.
// So this process's writers number the files they make at each path, and a follower
// in the same process (the daemon's) asks whether the file it goes on in is the one
// right after its own.

// genKept is how many of a path's latest files are remembered.
const genKept = 64

type fileID struct{ dev, ino uint64 }

// genRing holds a path's latest files: file number g at ids[g%genKept].
type genRing struct {
	owner *File
	next  uint64 // the number the next file gets; files 0..next-1 were made
	ids   [genKept]fileID
}

var generations = struct {
	sync.Mutex
	m map[string]*genRing
}{m: map[string]*genRing{}}

func idOf(st os.FileInfo) (fileID, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(sys.Dev), uint64(sys.Ino)}, true
}

// noteFile records st as the file f now writes at path: the next one, unless it is the
// latest already (opened again, SIGUSR2).
func noteFile(f *File, path string, st os.FileInfo) {
	id, ok := idOf(st)
	if !ok {
		return
	}
	generations.Lock()
	defer generations.Unlock()
	r := generations.m[path]
	if r == nil {
		r = &genRing{}
		generations.m[path] = r
	}
	r.owner = f
	if r.next > 0 && r.ids[(r.next-1)%genKept] == id {
		return
	}
	r.ids[r.next%genKept] = id
	r.next++
}

// forgetFiles drops path's record when f, its last writer, closes.
func forgetFiles(f *File, path string) {
	generations.Lock()
	defer generations.Unlock()
	if r := generations.m[path]; r != nil && r.owner == f {
		delete(generations.m, path)
	}
}

// nextGen is the number the next file made at path will get (0 when no writer of this
// process made one yet).
func nextGen(path string) uint64 {
	generations.Lock()
	defer generations.Unlock()
	if r := generations.m[path]; r != nil {
		return r.next
	}
	return 0
}

// fileGen is the number of the file st among those made at path: the latest made with
// its inode (a file held open keeps its inode; one removed may see it reused).
func fileGen(path string, st os.FileInfo) (uint64, bool) {
	id, ok := idOf(st)
	if !ok {
		return 0, false
	}
	generations.Lock()
	defer generations.Unlock()
	r := generations.m[path]
	if r == nil {
		return 0, false
	}
	return r.find(id)
}

func (r *genRing) find(id fileID) (uint64, bool) {
	for g := r.next; g > 0 && r.next-g < genKept; g-- {
		if r.ids[(g-1)%genKept] == id {
			return g - 1, true
		}
	}
	return 0, false
}

// skipped says whether files were made at path between from (open, or its number from
// a mark when fromGen is set) and to; known false when the record cannot tell (a file
// of an earlier daemon, or no writer of this process).
func skipped(path string, from os.FileInfo, fromGen *uint64, to os.FileInfo) (gap, known bool) {
	tg, ok := fileGen(path, to)
	if !ok {
		return false, false
	}
	if fromGen != nil {
		return tg > *fromGen+1, true
	}
	fg, ok := fileGen(path, from)
	if ok {
		return tg > fg+1, true
	}
	generations.Lock()
	defer generations.Unlock()
	if r := generations.m[path]; r != nil && r.next > genKept {
		return true, true // older than every file remembered: many were made since
	}
	return false, false
}
