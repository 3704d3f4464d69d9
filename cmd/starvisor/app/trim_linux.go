package app

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// trimCode unmaps the pages of the binary's own code and constants, so the daemon's
// resident memory counts only the code it runs from now on. Start-up runs much code
// once and never again (the command line's parser, the Starlark evaluator, the first
// apply's checks): about two thirds of the binary's pages in use. They are a private
// file mapping nobody writes, so unmapping them loses nothing: a page used again is
// mapped back from the page cache at its next use (a minor fault, a microsecond), and one
// that is not stays cached only while the kernel has no better use for the memory.
// Returns the bytes unmapped.
func trimCode() (n uintptr) {
	for _, s := range codeSpans() {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, s.start, s.end-s.start, unix.MADV_DONTNEED); e == 0 {
			n += s.end - s.start
		}
	}
	return n
}

// codeSpans are the mappings trimCode may unmap, found once: reading smaps takes a
// millisecond (the kernel walks every mapping's pages), and they do not change.
var codeSpans = sync.OnceValue(func() []span {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	if unix.Stat("/proc/self/exe", &st) != nil {
		return nil
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil
	}
	return untouchedSpans(smaps, exe, st.Dev, st.Ino)
})

type span struct{ start, end uintptr }

// untouchedSpans reads smaps for the mappings of the file exe (by path, or by device
// and inode) that are private, not writable, and hold no page of their own: no
// Anonymous or Swap page, which a write would have made (a relocated PIE's tables,
// written then made read-only). Unmapping such a page would lose what was written; a
// mapping without any maps nothing but the file.
func untouchedSpans(smaps []byte, exe string, dev, ino uint64) []span {
	var spans []span
	var cur span
	ours, written := false, false
	end := func() {
		if ours && !written {
			spans = append(spans, cur)
		}
		ours, written = false, false
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a mapping's header: start-end perms offset dev inode [path]
			end()
			if len(f) < 5 || len(f[1]) < 4 || f[1][1] == 'w' || f[1][3] != 'p' {
				continue
			}
			s, ok := parseSpan(f[0])
			if !ok || !sameFile(line, f, exe, dev, ino) {
				continue
			}
			cur, ours = s, true
			continue
		}
		if ours && (f[0] == "Anonymous:" || f[0] == "Swap:") && (len(f) < 2 || f[1] != "0") {
			written = true
		}
	}
	end()
	return spans
}

func parseSpan(field string) (span, bool) {
	lo, hi, ok := strings.Cut(field, "-")
	a, err1 := strconv.ParseUint(lo, 16, 64)
	b, err2 := strconv.ParseUint(hi, 16, 64)
	if !ok || err1 != nil || err2 != nil || b <= a {
		return span{}, false
	}
	return span{uintptr(a), uintptr(b)}, true
}

// sameFile: the header line (split into f) maps exe. The path is the rest of the line
// after the inode (it may hold spaces, or end in " (deleted)" as exe then does); device
// and inode catch a path that reads differently, as on overlayfs.
func sameFile(line string, f []string, exe string, dev, ino uint64) bool {
	if i := strings.Index(line, "/"); i >= 0 && line[i:] == exe {
		return true
	}
	n, err := strconv.ParseUint(f[4], 10, 64)
	maj, min, ok := strings.Cut(f[3], ":")
	a, err1 := strconv.ParseUint(maj, 16, 32)
	b, err2 := strconv.ParseUint(min, 16, 32)
	return err == nil && ok && err1 == nil && err2 == nil && n == ino && unix.Mkdev(uint32(a), uint32(b)) == dev
}
