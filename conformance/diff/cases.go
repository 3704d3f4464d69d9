package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// prog is one program, rendered both as a [program:x] section and as a program() call,
// so the two daemons run the same thing.
type prog struct {
	name        string
	args        []string // fakeproc verbs
	startsecs   int
	retries     int
	autorestart string // "true", "false", "unexpected"
	manual      bool   // autostart = false
	stopwait    int    // seconds
	priority    int
}

func (p prog) ini(dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[program:%s]\ncommand=%s/fakeproc %s\n", p.name, dir, strings.Join(p.args, " "))
	fmt.Fprintf(&b, "startsecs=%d\nstartretries=%d\nautorestart=%s\nautostart=%v\n", p.startsecs, p.retries, p.autorestart, !p.manual)
	fmt.Fprintf(&b, "stopwaitsecs=%d\npriority=%d\nstdout_logfile=NONE\nstderr_logfile=NONE\n\n", p.stopwait, p.priority)
	return b.String()
}

func (p prog) star(dir string) string {
	restart := map[string]string{"true": "True", "false": "False", "unexpected": `"unexpected"`}[p.autorestart]
	args := []string{strconv.Quote(dir + "/fakeproc")}
	for _, a := range p.args {
		args = append(args, strconv.Quote(a))
	}
	return fmt.Sprintf("program(name = %q, command = [%s], start_secs = %d, start_retries = %d, autorestart = %s, autostart = %s, stop_timeout = \"%ds\", priority = %d, stdout = None, stderr = None)\n",
		p.name, strings.Join(args, ", "), p.startsecs, p.retries, restart, map[bool]string{true: "False", false: "True"}[p.manual], p.stopwait, p.priority)
}

func defaults(name string, args ...string) prog {
	return prog{name: name, args: args, startsecs: 1, retries: 3, autorestart: "unexpected", stopwait: 10, priority: 999}
}

// diffCase is one scenario: the programs, and what to do and measure on a running daemon.
// measure returns one value per metric, in the order of metrics.
type diffCase struct {
	id      string // "S3"
	title   string
	progs   []prog
	metrics []string
	measure func(d daemon) []string
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func msList(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, strconv.FormatInt(d.Milliseconds(), 10))
	}
	return strings.Join(s, ", ") + " ms"
}

// first is the time of proc's first entry into state (zero when none).
func first(evs []event, proc, state string) time.Time {
	for _, e := range evs {
		if e.proc == proc && e.to == state {
			return e.at
		}
	}
	return time.Time{}
}

func count(evs []event, proc, state string) int {
	n := 0
	for _, e := range evs {
		if e.proc == proc && e.to == state {
			n++
		}
	}
	return n
}

// delays lists, for each entry of proc into from, the time to its next entry into to.
func delays(evs []event, proc, from, to string) []time.Duration {
	var out []time.Duration
	var t time.Time
	for _, e := range evs {
		if e.proc != proc {
			continue
		}
		if e.to == to && !t.IsZero() {
			out = append(out, e.at.Sub(t))
			t = time.Time{}
		}
		if e.to == from {
			t = e.at
		}
	}
	return out
}

func has(proc, state string, n int) func([]event) bool {
	return func(evs []event) bool { return count(evs, proc, state) >= n }
}

var cases = []diffCase{
	{
		id: "S1", title: "first spawn after the daemon starts",
		progs:   []prog{defaults("web", "sleep", "1h")},
		metrics: []string{"exec -> first spawn"},
		measure: func(d daemon) []string {
			waitFor(d, 10*time.Second, has("web", "STARTING", 1))
			return []string{ms(first(d.events(), "web", "STARTING").Sub(d.started()))}
		},
	},
	{
		id: "S2", title: "STARTING -> RUNNING, start_secs 1",
		progs:   []prog{defaults("web", "sleep", "1h")},
		metrics: []string{"spawn -> RUNNING"},
		measure: func(d daemon) []string {
			waitFor(d, 10*time.Second, has("web", "RUNNING", 1))
			evs := d.events()
			return []string{ms(first(evs, "web", "RUNNING").Sub(first(evs, "web", "STARTING")))}
		},
	},
	{
		id: "S3", title: "exit 1 at once, start_retries 3",
		progs:   []prog{defaults("crash", "exit", "1")},
		metrics: []string{"failure -> retry", "first spawn -> FATAL"},
		measure: func(d daemon) []string {
			waitFor(d, 20*time.Second, has("crash", "FATAL", 1))
			evs := d.events()
			return []string{msList(delays(evs, "crash", "BACKOFF", "STARTING")),
				ms(first(evs, "crash", "FATAL").Sub(first(evs, "crash", "STARTING")))}
		},
	},
	{
		id: "S4", title: "exit 1 at once, start_retries 0",
		progs:   []prog{func() prog { p := defaults("crash", "exit", "1"); p.retries = 0; return p }()},
		metrics: []string{"BACKOFF -> FATAL"},
		measure: func(d daemon) []string {
			waitFor(d, 10*time.Second, has("crash", "FATAL", 1))
			return []string{msList(delays(d.events(), "crash", "BACKOFF", "FATAL"))}
		},
	},
	{
		id: "S8", title: "autorestart true, exits 0 after 1.1 s",
		progs:   []prog{func() prog { p := defaults("job", "sleep", "1100ms", "exit", "0"); p.autorestart = "true"; return p }()},
		metrics: []string{"exit -> respawn"},
		measure: func(d daemon) []string {
			waitFor(d, 15*time.Second, has("job", "STARTING", 4))
			return []string{msList(delays(d.events(), "job", "EXITED", "STARTING"))}
		},
	},
	{
		id: "S11", title: "start_secs 0, exit 1 at once",
		progs:   []prog{func() prog { p := defaults("job", "exit", "1"); p.startsecs = 0; return p }()},
		metrics: []string{"spawns in the first 5 s", "BACKOFF/FATAL entries"},
		measure: func(d daemon) []string {
			time.Sleep(5 * time.Second) // a fixed window: the count is the measurement
			evs := d.events()
			t0 := first(evs, "job", "STARTING")
			n := 0
			for _, e := range evs {
				if e.proc == "job" && e.to == "STARTING" && e.at.Sub(t0) < 5*time.Second {
					n++
				}
			}
			return []string{strconv.Itoa(n), strconv.Itoa(count(evs, "job", "BACKOFF") + count(evs, "job", "FATAL"))}
		},
	},
	{
		id: "S13", title: "closes its output, dies at 0.8 s (start_secs 1, start_retries 3)",
		progs:   []prog{defaults("closer", "close-stdio", "sleep", "800ms", "exit", "1")},
		metrics: []string{"misread as RUNNING", "first spawn -> FATAL"},
		measure: func(d daemon) []string {
			ok := waitFor(d, 30*time.Second, has("closer", "FATAL", 1))
			evs := d.events()
			fatal := "not within 30 s"
			if ok {
				fatal = ms(first(evs, "closer", "FATAL").Sub(first(evs, "closer", "STARTING")))
			}
			return []string{fmt.Sprintf("%d of %d spawns", count(evs, "closer", "RUNNING"), count(evs, "closer", "STARTING")), fatal}
		},
	},
	{
		id: "S20", title: "stop a TERM-ignoring program, stop timeout 1 s",
		progs:   []prog{func() prog { p := defaults("ign", "trap", "TERM", "sleep", "1h"); p.stopwait = 1; return p }()},
		metrics: []string{"stop call"},
		measure: func(d daemon) []string {
			waitFor(d, 10*time.Second, has("ign", "RUNNING", 1))
			took, _, err := d.ctl("stop", "ign")
			return []string{withErr(ms(took), err)}
		},
	},
	{
		id: "S33", title: "start three stopped programs (start_secs 1)",
		progs: []prog{
			func() prog { p := defaults("p10", "sleep", "1h"); p.manual, p.priority = true, 10; return p }(),
			func() prog { p := defaults("p20", "sleep", "1h"); p.manual, p.priority = true, 20; return p }(),
			func() prog { p := defaults("p30", "sleep", "1h"); p.manual, p.priority = true, 30; return p }(),
		},
		metrics: []string{"start p10 p20 p30"},
		measure: func(d daemon) []string {
			time.Sleep(1500 * time.Millisecond) // let the daemon come up (supervisord has no event for it)
			took, _, err := d.ctl("start", "p10", "p20", "p30")
			return []string{withErr(ms(took), err)}
		},
	},
	{
		id: "S36", title: "shutdown: priority 900 ignores TERM (stop timeout 1 s), then 500, then 1",
		progs: []prog{
			func() prog { p := defaults("a", "sleep", "1h"); p.priority = 1; return p }(),
			func() prog { p := defaults("b", "sleep", "1h"); p.priority = 500; return p }(),
			func() prog {
				p := defaults("slow", "trap", "TERM", "sleep", "1h")
				p.priority, p.stopwait = 900, 1
				return p
			}(),
		},
		metrics: []string{"TERM -> daemon exit"},
		measure: func(d daemon) []string {
			waitFor(d, 10*time.Second, func(evs []event) bool {
				return count(evs, "a", "RUNNING")+count(evs, "b", "RUNNING")+count(evs, "slow", "RUNNING") == 3
			})
			took, err := d.stop()
			return []string{withErr(ms(took), err)}
		},
	},
	{
		id: "S56", title: "reload with an unchanged configuration",
		progs:   []prog{defaults("web", "sleep", "1h")},
		metrics: []string{"web keeps its pid", "control answers right after"},
		measure: func(d daemon) []string {
			waitFor(d, 10*time.Second, has("web", "RUNNING", 1))
			before := d.pid("web")
			if err := d.reload(); err != nil {
				return []string{"reload: " + err.Error(), ""}
			}
			// Watch for 3 s: does the control socket answer on every poll, and is web
			// the same process at the end?
			failed := 0
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				if _, _, err := d.ctl("status"); err != nil {
					failed++
				}
			}
			waitFor(d, 5*time.Second, func([]event) bool { return d.pid("web") != 0 })
			after := d.pid("web")
			answers := "yes"
			if failed > 0 {
				answers = fmt.Sprintf("no: %d failed polls", failed)
			}
			return []string{strconv.FormatBool(before != 0 && before == after), answers}
		},
	},
}

func withErr(s string, err error) string {
	if err != nil {
		return s + " (" + firstLine(err.Error()) + ")"
	}
	return s
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
