package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/starvisor/starvisor/engine/logs"
	"github.com/starvisor/starvisor/engine/plan"
)

// skippedHeader names, in a logs answer, a process whose log could not be read: "name: why".
const skippedHeader = "Starvisor-Skipped"

// followEvery is how often `logs -f` looks for new bytes; a person reading a log does not
// notice 100 ms, and it keeps the daemon free of per-file watchers.
var followEvery = 100 * time.Millisecond

// logs answers `starvisor logs`: the end of the log of the processes the name specs
// select, then, with follow=1, what they write next. One process prints as is; from
// several, each line comes whole after its process's name ("web   | ...").
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	follow := q.Get("follow") == "1"
	// Following all or a group, more may join (an apply adds them): name every line.
	many := follow && slices.ContainsFunc(q["name"], s.groupSpec)
	stream := streamOf(q)
	var marks map[string]logs.Mark
	if many {
		marks = s.logMarks(stream)
	}
	var srcs []*logSource
	ok := false
	if q.Get("daemon") == "1" {
		srcs, ok = s.daemonSource(w)
	} else {
		srcs, ok = s.logSources(w, q["name"], stream, many, follow)
	}
	defer func() {
		for _, src := range srcs {
			src.close()
		}
	}()
	if !ok {
		return
	}
	if follow {
		// The logs followed hold descriptors for as long as their clients stay, and
		// spawns need them: past a quarter of the limit, a follow waits its turn.
		n := int64(len(srcs))
		if s.following.Add(n) > followLimit() {
			s.following.Add(-n)
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("the daemon follows too many logs for other clients already (a quarter of its open-files limit): its programs need the descriptors; try again once some logs -f end"))
			return
		}
		defer s.following.Add(-n) // counted as it began: those an apply adds are not
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, src := range srcs {
		if src.f != nil {
			if err := writeTail(src.out, src.f, queryInt(r, "n", 10), !follow); err != nil {
				return
			}
		}
		if lw, ok := src.out.(*logs.Labeller); ok && !follow {
			lw.Flush() // a last line without its newline
		}
	}
	if !follow {
		return
	}
	for _, src := range srcs {
		src.follow = logs.Follow(src.log, src.f)
		src.follow.BackOffAbsent() // most of a big bundle's logs may never be written
		src.f = nil                // follow owns it now
	}
	daemon := q.Get("daemon") == "1"
	seen := s.b.Plan()
	fl, _ := w.(http.Flusher)
	t := time.NewTicker(followEvery)
	defer t.Stop()
	for {
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			// The daemon stops serving once every program stopped: the lines they wrote
			// while stopping ("draining...") are in the files, and go out before the end.
			for _, src := range srcs {
				io.Copy(src.out, src.follow)
				if lw, ok := src.out.(*logs.Labeller); ok {
					lw.Flush() // a line its process left unfinished: not lost at the end
				}
			}
			return
		case <-t.C:
		}
		if p := s.b.Plan(); !daemon && p != seen {
			seen = p
			var gone []string
			srcs, gone = removedSources(srcs, p)
			if many {
				srcs = s.addedSources(w, srcs, q["name"], stream, marks)
			}
			if len(srcs) == 0 {
				// Said after the last lines: `logs -f web` went on, silent, holding the
				// removed log open, and read as if web had gone quiet.
				w.Header().Set(http.TrailerPrefix+endedTrailer, strings.Join(gone, ", ")+" removed by an apply")
				return
			}
		}
		for i := 0; i < len(srcs); {
			j := i + 1
			for j < len(srcs) && srcs[j].name == srcs[i].name { // a process's logs are side by side
				j++
			}
			if copyInOrder(srcs[i:j]) != nil {
				return // the client went away
			}
			i = j
		}
	}
}

// endedTrailer says why a follow ended before the client left, when not because the
// daemon stopped: the processes followed were removed.
const endedTrailer = "Starvisor-Ended"

// removedSources drops from srcs the logs of processes p no longer has, once their last
// lines went out: a follow of all held every removed program's log open (one descriptor
// per deploy that renamed one). It returns the rest and the names dropped.
func removedSources(srcs []*logSource, p *plan.Plan) (kept []*logSource, gone []string) {
	if p == nil {
		return srcs, nil
	}
	for _, src := range srcs {
		if _, ok := p.Lookup(src.name); ok {
			kept = append(kept, src)
			continue
		}
		io.Copy(src.out, src.follow)
		if lw, ok := src.out.(*logs.Labeller); ok {
			lw.Flush()
		}
		src.close()
		if !slices.Contains(gone, src.name) {
			gone = append(gone, src.name)
		}
	}
	return kept, gone
}

// copyInOrder copies what one process's logs gained since the last look. When more
// than one gained, the file written last goes last: a crash's traceback on stderr and
// the first line of the run that replaced it, on stdout, came in one look, stdout first,
// and read as "started, then crashed". (Lines of both interleaved within one look keep
// each file's order only.)
func copyInOrder(srcs []*logSource) error {
	if len(srcs) == 1 {
		_, err := io.Copy(srcs[0].out, srcs[0].follow)
		return err
	}
	type gained struct {
		src  *logSource
		data bytes.Buffer
		at   time.Time
	}
	got := make([]*gained, len(srcs))
	for k, src := range srcs {
		g := &gained{src: src}
		if _, err := io.Copy(&g.data, src.follow); err == nil && g.data.Len() > 0 {
			g.at = src.follow.ModTime()
		}
		got[k] = g
	}
	// Those that gained by when they were written, then the others.
	slices.SortStableFunc(got, func(a, b *gained) int {
		if ea, eb := a.data.Len() == 0, b.data.Len() == 0; ea != eb {
			if ea {
				return 1
			}
			return -1
		}
		return a.at.Compare(b.at)
	})
	for _, g := range got {
		if _, err := io.Copy(g.src.out, &g.data); err != nil {
			return err
		}
	}
	return nil
}

// logMarks notes where each process's log ends when a follow begins: a process that
// joins later is followed from there, every line it wrote since, or from the start of a
// log that did not exist yet. The other files in those logs' folders are marked too: a
// process added back (a pool scaled down, then up) has its file there from earlier
// runs, whose lines are not news (`logs -f -n 0` printed them all).
func (s *Server) logMarks(stream Stream) map[string]logs.Mark {
	marks := map[string]logs.Mark{}
	p := s.logPlan()
	if p == nil {
		return marks
	}
	dirs := map[string]bool{}
	for _, pr := range p.Programs {
		for _, l := range stream.logs(&pr) {
			marks[l.log.Path] = logs.MarkEnd(l.log)
			dirs[filepath.Dir(l.log.Path)] = true
		}
	}
	for dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			if _, ok := marks[path]; !ok && e.Type().IsRegular() {
				marks[path] = logs.MarkEnd(plan.Log{Path: path})
			}
		}
	}
	return marks
}

// addedSources follows, after an apply, the processes the specs now select that srcs
// lacks (a program added, numprocs raised): `logs -f` of all or of a group keeps up,
// as `pm2 logs` does, each from where its log was when the follow began (logMarks).
func (s *Server) addedSources(w io.Writer, srcs []*logSource, specs []string, stream Stream, marks map[string]logs.Mark) []*logSource {
	names, _, err := s.resolve(specs)
	if err != nil {
		return srcs
	}
	have := map[string]bool{}
	width := 0
	for _, src := range srcs {
		have[src.name] = true
		width = max(width, src.width, logs.Width(src.label)) // the column the others print in
	}
	was := width
	p := s.logPlan()
	type added struct {
		name string
		l    streamLog
	}
	var news []added
	for _, name := range names {
		pr, ok := p.Lookup(name)
		if !ok || have[name] {
			continue
		}
		for _, l := range stream.logs(&pr) {
			if !strings.HasPrefix(l.log.Path, "/dev/") {
				news = append(news, added{name, l})
				width = max(width, logs.Width(l.label))
			}
		}
	}
	for _, a := range news {
		follow := logs.Follow(a.l.log, nil) // a log that was not there: all of it
		if m, ok := marks[a.l.log.Path]; ok {
			follow = logs.FollowFrom(a.l.log, m)
		}
		follow.BackOffAbsent()
		out := logs.NewLabeller(w, logs.Pad(a.l.label, width))
		srcs = append(srcs, &logSource{name: a.name, label: a.l.label, log: a.l.log, follow: follow, out: out, width: width})
	}
	if width > was {
		// A wider name joined: the others' labels take the new column, as they print
		// from the same goroutine (b | under longername |).
		for _, src := range srcs {
			if lw, ok := src.out.(*logs.Labeller); ok && src.width < width {
				lw.Relabel(logs.Pad(src.label, width))
				src.width = width
			}
		}
	}
	return srcs
}

// logSources opens the logs stream selects of each process the specs select, each
// writing to w, through a Labeller when there are several (or prefixed); of several,
// logTroubles are the log errors the daemon reports, by process, read once when needed.
type logTroubles map[string]string

// of is the daemon's error for name's log at path ("" when none): one its writer hit.
func (t *logTroubles) of(b Backend, name, path string) string {
	if *t == nil {
		*t = logTroubles{}
		for _, st := range b.States() {
			if st.LogError != "" {
				(*t)[st.Name] = st.LogError
			}
		}
	}
	if e := (*t)[name]; strings.Contains(e, path) {
		return e
	}
	return ""
}

// those without a log are left out, and so, unless following, is a stderr log with
// nothing in it yet. It answers the error itself and returns false.
func (s *Server) logSources(w http.ResponseWriter, specs []string, stream Stream, prefixed, follow bool) ([]*logSource, bool) {
	names, unknown, err := s.resolve(specs)
	if err == nil && len(unknown) > 0 {
		err = fmt.Errorf("%s: %s", unknown[0].Error, unknown[0].Name)
	}
	if err != nil {
		writeError(w, resolveStatus(err), err) // naming nothing is a bad request, as elsewhere
		return nil, false
	}
	p := s.logPlan()
	var srcs []*logSource
	var skipped []string
	var notFile error // the last log left out for not being a file
	var troubles logTroubles
	width := 0
	for _, name := range names {
		pr, _ := p.Lookup(name)
		ls := stream.logs(&pr)
		if len(ls) == 0 {
			why := stream.none(name, &pr)
			if len(names) == 1 {
				writeError(w, http.StatusNotFound, why)
				return srcs, false
			}
			if named(specs, name) {
				skipped = append(skipped, why.Error()) // asked for by name: said why it is left out
			}
			continue // of several, those with a log
		}
		alone := len(names) == 1 && len(ls) == 1
		for _, l := range ls {
			// A log file is created by the program's first byte (engine/logs), so a missing
			// one is an empty log: nothing to print, and with -f, one to wait for.
			f, err := logs.OpenRead(l.log.Path)
			daemons := l.log.Path == "/dev/stdout" || l.log.Path == "/dev/stderr" // the daemon's output
			if errors.Is(err, logs.ErrNotRegular) || daemons {
				// Not a file to tail: /dev/stdout (the daemon's own output, from an imported
				// supervisord.conf) would have the daemon read its terminal, or, detached,
				// its own log, every process's lines unmarked, as if this one's.
				if f != nil {
					f.Close()
				}
				err = fmt.Errorf("its output goes to %s, not a log file", l.log.Path)
				if daemons {
					err = fmt.Errorf("%w: it is in the daemon's own output (starvisor logs --daemon)", err)
				}
				if !alone {
					notFile = fmt.Errorf("%s: %w", name, err) // said should nothing else print
					continue                                  // of several, those with a log
				}
			}
			if errors.Is(err, fs.ErrNotExist) {
				// No file, as for a program that wrote nothing yet, unless the daemon could
				// not make it: its output is dropped, which an empty answer hid.
				if why := troubles.of(s.b, name, l.log.Path); why != "" {
					err = fmt.Errorf("its log cannot be written: %s", why)
				}
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				if alone {
					writeError(w, http.StatusNotFound, fmt.Errorf("%s: %w", name, err))
					return srcs, false
				}
				// Of several, one unreadable log must not hide the others' lines.
				skipped = append(skipped, fmt.Sprintf("%s: %v", l.label, err))
				continue
			}
			if !follow && l.stderr && len(ls) > 1 && isEmpty(f) { // a stderr beside stdout, empty so far
				if f != nil {
					f.Close()
				}
				continue // nothing to show, and no line to wait for
			}
			srcs = append(srcs, &logSource{name: name, label: l.label, log: l.log, f: f, out: w})
			// The columns of all that may print: a stderr still empty, followed, may speak
			// later, and its lines must line up with the rest.
			width = max(width, logs.Width(l.label))
		}
	}
	if len(srcs) == 0 && len(skipped) > 0 {
		writeError(w, http.StatusNotFound, errors.New(strings.Join(skipped, "; ")))
		return nil, false
	}
	if len(srcs) == 0 && notFile != nil && len(names) == 1 {
		writeError(w, http.StatusNotFound, notFile)
		return nil, false
	}
	if len(srcs) == 0 {
		writeError(w, http.StatusNotFound, fmt.Errorf("%s: no log file", strings.Join(names, ", ")))
		return nil, false
	}
	for _, sk := range skipped {
		w.Header().Add(skippedHeader, sk)
	}
	if len(srcs) > 1 || len(names) > 1 || prefixed { // prefixed when several were asked for, even if one has a log
		for _, src := range srcs {
			src.out, src.width = logs.NewLabeller(w, logs.Pad(src.label, width)), width
		}
	}
	return srcs, true
}

// groupSpec says whether spec selects a group: all, GROUP:*, GROUP:, or a bare name that
// is no process's own (a pool, worker for worker:*, or a group), which an apply may grow.
func (s *Server) groupSpec(spec string) bool {
	if spec == "all" || strings.HasSuffix(spec, ":*") || strings.HasSuffix(spec, ":") {
		return true
	}
	p := s.b.Plan()
	if p == nil || strings.Contains(spec, ":") {
		return false
	}
	_, own := p.Lookup(spec)
	return !own
}

// named says whether specs name the process name itself, not through all or a group.
func named(specs []string, name string) bool {
	return slices.ContainsFunc(specs, func(sp string) bool { return sp == name || strings.HasSuffix(sp, ":"+name) })
}

// isEmpty says whether the log f (nil: not made yet) holds no byte.
func isEmpty(f *os.File) bool {
	if f == nil {
		return true
	}
	st, err := f.Stat()
	return err == nil && st.Size() == 0
}

// Stream selects which of a process's logs `logs` reads.
type Stream string

const (
	Both   Stream = ""       // stdout, and stderr when it has a file of its own
	Stdout Stream = "stdout" // stdout only (and stderr with it, under redirect_stderr)
	Stderr Stream = "stderr"
)

// none says why pr, named name, has no log of the stream.
func (s Stream) none(name string, pr *plan.Program) error {
	switch {
	case s == Stderr && pr.RedirectStderr && pr.Stdout != nil:
		// "no log file" read as lost logs: its stderr is in the stdout log.
		return fmt.Errorf("%s: its stderr goes to its stdout log (redirect_stderr = True): starvisor logs %s", name, name)
	case s == Stderr:
		return fmt.Errorf("%s: no log file for stderr (stderr = None)", name)
	case s == Stdout:
		return fmt.Errorf("%s: no log file for stdout (stdout = None)", name)
	}
	return fmt.Errorf("%s: no log file", name)
}

// streamOf reads the stream a logs request asks for.
func streamOf(q url.Values) Stream {
	switch {
	case q.Get("stream") == string(Stdout):
		return Stdout
	case q.Get("stream") == string(Stderr), q.Get("stderr") == "1": // stderr=1: clients before streams
		return Stderr
	}
	return Both
}

// streamLog is one log of a process, labelled for prefixed output: its name, and for its
// stderr beside its stdout, name.err (as the file is named by default).
type streamLog struct {
	label  string
	log    plan.Log
	stderr bool
}

// logs returns the logs of pr the stream selects.
func (s Stream) logs(pr *plan.Program) []streamLog {
	var out []streamLog
	if s != Stderr && pr.Stdout != nil {
		out = append(out, streamLog{label: pr.ProcessName, log: *pr.Stdout})
	}
	if s != Stdout && pr.Stderr != nil && (pr.Stdout == nil || pr.Stderr.Path != pr.Stdout.Path) {
		label := pr.ProcessName
		if len(out) > 0 {
			label += ".err"
		}
		out = append(out, streamLog{label: label, log: *pr.Stderr, stderr: true})
	}
	return out
}

// logSource is one process's log in a `logs` answer.
type logSource struct {
	name   string // the process's
	label  string // its prefix when several are shown: the name, or name.err for its stderr
	log    plan.Log
	f      *os.File // until follow takes it
	follow *logs.Follower
	out    io.Writer // the answer, through a Labeller when there are several
	width  int       // the labels' column, padded to (0: no label)
}

// daemonSource is the detached daemon's own log (<log_dir>/starvisor.log): why programs
// restarted, stray processes stopped, reloads; read with `logs --daemon`. It answers
// the error itself and returns false.
func (s *Server) daemonSource(w http.ResponseWriter) ([]*logSource, bool) {
	p := s.logPlan()
	if p == nil {
		writeError(w, http.StatusNotFound, errors.New("no plan yet"))
		return nil, false
	}
	l := plan.Log{Path: filepath.Join(p.Supervisor.LogDir, plan.DaemonLog), Backups: 10}
	if s.DaemonLog != nil {
		l.Path = s.DaemonLog() // moved with the bundle, or kept from the daemon's start
	}
	f, err := logs.OpenRead(l.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusNotFound, fmt.Errorf("the daemon's log: %w", err))
		return nil, false
	}
	if f == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("the daemon's log: no %s: removed (a detached daemon makes it again at its next line), or a daemon run in the foreground (up without --detach), which writes its lines to its terminal", l.Path))
		return nil, false
	}
	return []*logSource{{name: "starvisor", label: "starvisor", log: l, f: f, out: w}}, true
}

func (src *logSource) close() {
	if src.f != nil {
		src.f.Close()
	}
	if src.follow != nil {
		src.follow.Close()
	}
}

// writeTail copies the last n lines of the log f to w, from its backups too when f has
// fewer, and leaves f at its end.
func writeTail(w io.Writer, f *os.File, n int, end bool) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if n <= 0 {
		_, err := f.Seek(0, io.SeekEnd)
		return err
	}
	var t logTail
	whole := t.readBack(f, size, n)
	// Fewer lines than asked right after a rotation: the rest are in the backups,
	// newest first (name.1, name.2, ...); one that is missing ends the walk.
	for k := 1; whole && t.wants(n); k++ {
		b, err := os.Open(f.Name() + "." + strconv.Itoa(k))
		if err != nil {
			break
		}
		if bst, err := b.Stat(); err == nil && bst.Mode().IsRegular() {
			whole = t.readBack(b, bst.Size(), n)
		}
		b.Close()
	}
	lines := bytes.SplitAfter(t.bytes(), []byte{'\n'})
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	} else if k := n - len(lines) + 1; t.size >= tailMax && len(lines) > 1 {
		// Cut by tailMax, short of n: its first line is a piece of one. Said, and the
		// piece left out: -n 100000 printed 41,944 lines from mid-line, with no word.
		lines[0] = []byte(fmt.Sprintf("[starvisor: logs -n reads back at most %d MiB: the %d %s before these are not shown]\n", tailMax>>20, k, map[bool]string{true: "line", false: "lines"}[k == 1]))
	} else if t.size >= tailMax && len(lines) == 1 {
		// One line longer than that: its end, said so (it started mid-line, with no word).
		lines = append([][]byte{fmt.Appendf(nil, "[starvisor: logs -n reads back at most %d MiB: the line below is the end of a longer one]\n", tailMax>>20)}, lines...)
	}
	for _, l := range lines {
		if _, err := w.Write(l); err != nil {
			return err
		}
	}
	if last := len(lines) - 1; end && last >= 0 && !bytes.HasSuffix(lines[last], []byte{'\n'}) {
		// A line still being written (a pipe read that ended mid-line): ended here, so
		// the shell's prompt does not follow it. A follow prints its rest as it comes.
		if _, err := w.Write([]byte{'\n'}); err != nil {
			return err
		}
	}
	_, err = f.Seek(size, io.SeekStart)
	return err
}

// tailMax bounds what a tail reads back: a log with no newline (a progress bar drawn
// with \r, binary output) would otherwise be read whole, backups and all, into the
// daemon's memory. A last line longer than that is cut to its end.
const tailMax = 4 << 20

// logTail is the end of a log read backwards: chunks, last first, and their newlines.
type logTail struct {
	chunks [][]byte
	size   int
	nl     int
}

// wants says whether more is needed for n lines, within tailMax.
func (t *logTail) wants(n int) bool { return t.nl <= n && t.size < tailMax }

// readBack reads the end of r (size bytes) backwards, 64 KB at a time, until the tail
// holds more than n lines, tailMax bytes or r's start; whole says it reached the start.
func (t *logTail) readBack(r io.ReaderAt, size int64, n int) (whole bool) {
	const chunk = 64 << 10
	off := size
	for off > 0 && t.wants(n) {
		step := min(int64(chunk), off)
		off -= step
		b := make([]byte, step)
		if _, err := r.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
			return false // what was read before stays good
		}
		t.chunks = append(t.chunks, b)
		t.size += len(b)
		t.nl += bytes.Count(b, []byte{'\n'})
	}
	return off == 0
}

// bytes joins the chunks in file order.
func (t *logTail) bytes() []byte {
	out := make([]byte, 0, t.size)
	for i := len(t.chunks) - 1; i >= 0; i-- {
		out = append(out, t.chunks[i]...)
	}
	return out
}

// logPlan is the running plan with its log paths where the files are now: a bundle moved
// while the daemon runs (mv of its folder) has its logs written in the folder it moved
// to (the writers hold their folders open), where the plan still names the old one;
// logs outside the script's folder too, when the folder above that holds them moved.
func (s *Server) logPlan() *plan.Plan {
	p := s.b.Plan()
	if p == nil || s.Root == nil {
		return p
	}
	return p.LogsMoved(s.Root(), Gone)
}

// Gone says whether nothing is at path: a folder of a bundle moved away (plan.MovedFolder).
func Gone(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, fs.ErrNotExist)
}
