package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/starvisor/starvisor/engine/plan"
)

// supervisordMoves are the state changes supervisord makes (reference §1.3; a reap
// after start_secs but before the promotion is RUNNING then EXITED, two changes).
var supervisordMoves = map[string]bool{
	"STOPPED>STARTING": true, "EXITED>STARTING": true, "FATAL>STARTING": true,
	"BACKOFF>STARTING": true, "STARTING>RUNNING": true, "STARTING>BACKOFF": true,
	"RUNNING>EXITED": true, "BACKOFF>FATAL": true, "BACKOFF>STOPPED": true,
	"STARTING>STOPPING": true, "RUNNING>STOPPING": true, "STOPPING>STOPPED": true,
	// Ours: a stop cancels an autorestart still waiting for its 1-s spacing (supervisord
	// respawns on its next tick and has no such wait).
	"EXITED>STOPPED": true,
}

// TestRandomOperationsKeepInvariants drives a supervisor on fakes with random
// operations (start, stop, restart, signal, apply of a changed plan, child exits,
// spawns starting or ceasing to fail, time passing) over programs with random
// policies: two ignore SIGTERM, one crash-loops, one exits at once, dependencies
// among them, one with a ready probe. After each
// one, once everything settled: a process shows STARTING, RUNNING or STOPPING exactly
// when one child of it is alive, with that pid; a program gone from the plan has no
// child alive; every state change is one supervisord makes, each starting where the
// last one ended; no call hangs. After Shutdown no child is alive and no goroutine is
// left (synctest would report it).
func TestRandomOperationsKeepInvariants(t *testing.T) {
	seeds := 50
	if testing.Short() {
		seeds = 5
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { randomRun(t, uint64(seed)) })
		})
	}
}

func randomRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	probes := &timedProber{fakeProber{gates: map[string]chan struct{}{}}}
	var r *rig
	r = newRig(t, func(o *Options) {
		o.Prober = probes
		// A probe's result is about the run that is current: the last change of that
		// process delivered before it (same goroutine, in order) left it STARTING or
		// RUNNING.
		o.OnReady = func(process string, err error, _ time.Time) {
			r.mu.Lock()
			defer r.mu.Unlock()
			last := ""
			for _, e := range r.events {
				if f := strings.Fields(e); f[1] == process {
					last = f[2]
				}
			}
			job := process == "d" && strings.HasSuffix(last, ">EXITED") // a job's readiness is its exit
			if !strings.HasSuffix(last, ">STARTING") && !strings.HasSuffix(last, ">RUNNING") && !job {
				t.Errorf("%s: probe result %v after %q", process, err, last)
			}
		}
	})
	probed := rng.IntN(2) == 0 // a has a ready probe, failing after 3 s until the gate opens
	down := false
	defer func() { // on a failure too (t.Fatal unwinds), so the bubble can end
		if !down {
			r.sup.Shutdown(context.Background())
		}
	}()
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names[:2] { // two that need SIGKILL to stop
		r.l.ignore[n] = []syscall.Signal{syscall.SIGTERM}
	}
	r.l.behave["c"] = exitAfter(time.Duration(rng.IntN(1500))*time.Millisecond, rng.IntN(3)) // crash loops
	r.l.behave["d"] = exitAfter(0, rng.IntN(2))                                              // exits at once

	// The names in the plan last applied (or being built), and their programs.
	current := map[string]bool{}
	prev := map[string]plan.Program{}
	randomProg := func(name string) plan.Program {
		return prog(name, func(pr *plan.Program) {
			pr.StartSecs = rng.IntN(2)
			pr.StartRetries = rng.IntN(3)
			pr.Autorestart = []string{plan.RestartAlways, plan.RestartNever, plan.RestartUnexpected}[rng.IntN(3)]
			pr.ExitCodes = [][]int{{0}, {0, 2}}[rng.IntN(2)]
			pr.StopTimeout = plan.Duration(time.Duration(1+rng.IntN(2)) * time.Second)
			pr.Autostart = rng.IntN(4) != 0
			pr.Priority = rng.IntN(3) * 100
			pr.Command = []string{"/opt/bin/" + name, fmt.Sprint(rng.IntN(3))} // a new value is a change
			// depends_on: a DAG over the programs in the plan, listed before this one.
			for _, dep := range names {
				if dep == name {
					break
				}
				if current[dep] && rng.IntN(4) == 0 {
					pr.DependsOn = append(pr.DependsOn, dep)
				}
			}
			if name == "d" && pr.Autorestart != plan.RestartAlways && rng.IntN(2) == 0 {
				job(pr) // ready = probe.exited(): its dependents wait for its exit
			}
			if name == "a" && probed {
				withProbe(pr)
				pr.Ready.Timeout = plan.Duration(3 * time.Second)
			}
		})
	}
	randomPlan := func() *plan.Plan {
		var progs []plan.Program
		clear(current)
		for _, n := range names {
			if rng.IntN(5) != 0 || n == "a" {
				current[n] = true
			}
		}
		for _, n := range names {
			if !current[n] {
				continue
			}
			// Most programs stay as they were, so reloads have unchanged ones to keep.
			pr, ok := prev[n]
			if !ok || rng.IntN(3) == 0 {
				pr = randomProg(n)
			}
			pr.DependsOn = slices.DeleteFunc(slices.Clone(pr.DependsOn), func(d string) bool { return !current[d] })
			prev[n] = pr
			progs = append(progs, pr)
		}
		return planOf(t, progs...)
	}
	some := func() []string {
		var in []string
		for _, n := range names {
			if current[n] {
				in = append(in, n)
			}
		}
		if len(in) == 0 || rng.IntN(6) == 0 {
			return []string{"a"} // maybe not in the plan: the call must say so, not hang
		}
		rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		return in[:1+rng.IntN(min(2, len(in)))]
	}
	alive := func(name string) []*fakeHandle {
		var out []*fakeHandle
		for _, h := range r.l.handles(name) {
			h.mu.Lock()
			if !h.exited {
				out = append(out, h)
			}
			h.mu.Unlock()
		}
		return out
	}
	// call runs one engine call with a deadline far beyond any policy's timings.
	call := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		if hung(f) {
			t.Fatalf("%s: still waiting after 10 minutes", what)
		}
	}
	last := map[string]string{} // process -> state its last event ended in
	// Processes an apply replaced (changed, as supervisord's update does) or removed
	// in this step: events of the old and the new process share the name, so this
	// step's are not chained; the next process's first change may come later, and
	// starts from STOPPED (fresh).
	replaced := map[string]bool{}
	fresh := map[string]bool{}
	var putBack []string // processes a failed jobs-first apply put back: their chain restarts
	seen := 0
	check := func(step int, op string) {
		t.Helper()
		synctest.Wait()
		r.mu.Lock()
		events := slices.Clone(r.events[seen:])
		seen = len(r.events)
		r.mu.Unlock()
		for _, e := range events {
			if debugRandom {
				t.Logf("  %s", e)
			}
			f := strings.Fields(e) // offset name FROM>TO
			name, move := f[1], f[2]
			from, to, _ := strings.Cut(move, ">")
			if !supervisordMoves[move] {
				t.Fatalf("step %d (%s): %s: %s is no supervisord state change", step, op, name, move)
			}
			switch prev, ok := last[name]; {
			case replaced[name]:
			case fresh[name] && from == "STOPPED":
				delete(fresh, name)
			case ok && prev != from:
				t.Fatalf("step %d (%s): %s: %s after a change that ended in %s", step, op, name, move, prev)
			}
			last[name] = to
		}
		for n := range replaced {
			fresh[n] = true
		}
		clear(replaced)
		st := map[string]Status{}
		for _, s := range r.sup.Status() {
			st[s.Name] = s
		}
		for _, n := range names {
			live := alive(n)
			s, inPlan := st[n]
			switch {
			case !inPlan && len(live) > 0:
				t.Fatalf("step %d (%s): %s is out of the plan but pid %d is alive", step, op, n, live[0].pid)
			case !inPlan:
			case s.State == Starting || s.State == Running || s.State == Stopping:
				if len(live) != 1 || live[0].pid != s.Pid {
					t.Fatalf("step %d (%s): %s is %v with pid %d, children alive: %d", step, op, n, s.State, s.Pid, len(live))
				}
			case len(live) != 0:
				t.Fatalf("step %d (%s): %s is %v but pid %d is alive", step, op, n, s.State, live[0].pid)
			}
		}
	}

	call("apply", func(ctx context.Context) error { _, err := r.sup.Apply(ctx, randomPlan()); return err })
	check(0, "apply")
	for step := 1; step <= 120; step++ {
		var op string
		switch k := rng.IntN(12); k {
		case 0, 1:
			ns := some()
			op = "start " + strings.Join(ns, ",")
			var err error
			call(op, func(ctx context.Context) error { err = r.sup.Start(ctx, ns...); return err })
			if err == nil { // a and e do not exit by themselves: they must be running now
				for _, n := range ns {
					if (n == "a" || n == "e") && r.status(n).State != Running {
						t.Fatalf("step %d (%s): started without error, %s is %v", step, op, n, r.status(n).State)
					}
				}
			}
		case 2:
			ns := some()
			op = "stop " + strings.Join(ns, ",")
			var err error
			call(op, func(ctx context.Context) error { err = r.sup.Stop(ctx, ns...); return err })
			if err == nil {
				for _, n := range ns {
					if st := r.status(n).State; st == Starting || st == Running || st == Stopping || st == Backoff {
						t.Fatalf("step %d (%s): stopped without error, %s is %v", step, op, n, st)
					}
				}
			}
		case 3:
			ns := some()
			op = "restart " + strings.Join(ns, ",")
			call(op, func(ctx context.Context) error { return r.sup.Restart(ctx, ns...) })
		case 4:
			ns := some()
			op = "signal " + strings.Join(ns, ",")
			_ = r.sup.Signal(t.Context(), syscall.SIGHUP, ns...)
		case 5, 6:
			n := names[rng.IntN(len(names))]
			code := rng.IntN(3)
			op = fmt.Sprintf("%s exits %d", n, code)
			if live := alive(n); len(live) > 0 {
				live[0].exit(code)
			}
		case 7:
			if rng.IntN(3) == 0 {
				r.l.mu.Lock()
				if r.l.fail["b"] == nil {
					r.l.fail["b"] = errors.New("couldn't exec /opt/bin/b: ENOENT")
				} else {
					delete(r.l.fail, "b")
				}
				op = fmt.Sprintf("b spawn fails: %v", r.l.fail["b"] != nil)
				r.l.mu.Unlock()
				break
			}
			if probed && rng.IntN(4) == 0 {
				op = "a becomes ready"
				probes.open("a")
				break
			}
			d := time.Duration(rng.IntN(4000)) * time.Millisecond
			op = "wait " + d.String()
			time.Sleep(d)
		case 8:
			op = "apply"
			before := map[string]int{} // running pids of the programs that never exit alone
			for _, st := range r.sup.Status() {
				if st.State == Running && (st.Name == "a" || st.Name == "b" || st.Name == "e") {
					before[st.Name] = st.Pid
				}
			}
			var d plan.Delta
			var applyErr error
			call(op, func(ctx context.Context) error { d, applyErr = r.sup.Apply(ctx, randomPlan()); return applyErr })
			if errors.Is(applyErr, ErrJobFailed) {
				// Its jobs-first phase failed: the jobs it changed are put back as they
				// were, in a successor that continues from that state, not from STOPPED;
				// those it added are gone.
				for _, c := range d.Changed {
					putBack = append(putBack, c.Name)
				}
				putBack = append(putBack, d.Added...) // removed again
			}
			if debugRandom {
				t.Logf("delta %+v", d)
			}
			// Only what changed restarts: an unchanged running program keeps its process.
			for _, n := range d.Unchanged {
				if pid, ok := before[n]; ok {
					if st := r.status(n); st.State != Running || st.Pid != pid {
						t.Fatalf("step %d (apply): %s is unchanged but went from RUNNING pid %d to %v pid %d", step, n, pid, st.State, st.Pid)
					}
				}
			}
			for _, n := range d.Removed {
				replaced[n] = true
			}
			for _, c := range d.Changed {
				replaced[c.Name] = true
			}
		case 10: // a client's start, stop or restart during a reload
			ns := some()
			verb := []string{"start", "stop", "restart"}[rng.IntN(3)]
			do := map[string]func(context.Context, ...string) error{"start": r.sup.Start, "stop": r.sup.Stop, "restart": r.sup.Restart}[verb]
			next := randomPlan()
			op = fmt.Sprintf("apply during %s %s", verb, strings.Join(ns, ","))
			var d plan.Delta
			var wg sync.WaitGroup
			var applyHung, doHung bool
			wg.Go(func() {
				var err error
				applyHung = hung(func(ctx context.Context) error { d, err = r.sup.Apply(ctx, next); return err })
				if errors.Is(err, ErrJobFailed) {
					for _, c := range d.Changed {
						putBack = append(putBack, c.Name)
					}
					putBack = append(putBack, d.Added...)
				}
			})
			wg.Go(func() { doHung = hung(func(ctx context.Context) error { return do(ctx, ns...) }) })
			wg.Wait()
			if applyHung || doHung {
				t.Fatalf("step %d (%s): still waiting after 10 minutes (apply %v, %s %v)", step, op, applyHung, verb, doHung)
			}
			for _, n := range d.Removed {
				replaced[n] = true
			}
			for _, c := range d.Changed {
				replaced[c.Name] = true
			}
		case 11: // two clients at once, on names that may overlap
			verbs := []string{"start", "stop", "restart"}
			calls := map[string]func(context.Context, ...string) error{"start": r.sup.Start, "stop": r.sup.Stop, "restart": r.sup.Restart}
			v1, v2, n1, n2 := verbs[rng.IntN(3)], verbs[rng.IntN(3)], some(), some()
			op = fmt.Sprintf("%s %s during %s %s", v1, strings.Join(n1, ","), v2, strings.Join(n2, ","))
			var wg sync.WaitGroup
			var h1, h2 bool
			wg.Go(func() { h1 = hung(func(ctx context.Context) error { return calls[v1](ctx, n1...) }) })
			wg.Go(func() { h2 = hung(func(ctx context.Context) error { return calls[v2](ctx, n2...) }) })
			wg.Wait()
			if h1 || h2 {
				t.Fatalf("step %d (%s): still waiting after 10 minutes", step, op)
			}
		case 9:
			if rng.IntN(2) == 0 {
				op = "stop all"
				call(op, func(ctx context.Context) error { return r.sup.Stop(ctx, "a", "b", "c", "d", "e") })
			} else {
				op = "start all"
				call(op, func(ctx context.Context) error { return r.sup.Start(ctx, "a", "b", "c", "d", "e") })
			}
		}
		if debugRandom {
			t.Logf("step %d: %s", step, op)
		}
		check(step, op)
		for _, n := range putBack {
			delete(last, n)
		}
		putBack = putBack[:0]
	}
	// Shutdown, maybe while a client is still at work, after cancelling a reload
	// under way as up does. (Shutdown and Apply take one lock, and a goroutine waiting
	// for a mutex stops the bubble's clock: the holder's stop timeouts would never come.)
	var wg sync.WaitGroup
	reload, cancelReload := context.WithCancel(context.Background())
	reloaded := make(chan struct{})
	var d plan.Delta
	if rng.IntN(2) == 0 {
		ns, next := some(), randomPlan()
		wg.Go(func() { hung(func(ctx context.Context) error { return r.sup.Restart(ctx, ns...) }) })
		go func() { d, _ = r.sup.Apply(reload, next); close(reloaded) }()
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
	} else {
		close(reloaded)
	}
	cancelReload()
	<-reloaded
	for _, n := range d.Removed {
		replaced[n] = true
	}
	for _, c := range d.Changed {
		replaced[c.Name] = true
	}
	if hung(r.sup.Shutdown) {
		t.Fatal("shutdown: still waiting after 10 minutes")
	}
	wg.Wait()
	down = true
	check(-1, "shutdown")
	for _, n := range names {
		if live := alive(n); len(live) > 0 {
			t.Fatalf("after shutdown: %s pid %d alive", n, live[0].pid)
		}
	}
}

// debugRandom logs every operation and state change (for a failing seed).
const debugRandom = false

// hung runs f with a deadline far beyond any policy's timings and reports whether it
// ran into it.
func hung(f func(ctx context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return errors.Is(f(ctx), context.DeadlineExceeded)
}

// timedProber is fakeProber whose probe gives up after the probe's timeout, as the
// real one does.
type timedProber struct{ fakeProber }

func (p *timedProber) Ready(ctx context.Context, pr plan.Program) error {
	p.tellFailure(ctx, pr.ProcessName)
	select {
	case <-p.gate(pr.ProcessName):
		return nil
	case <-time.After(time.Duration(pr.Ready.Timeout)):
		return errors.New("timed out")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// open makes name's probes pass from now on.
func (p *timedProber) open(name string) {
	g := p.gate(name)
	select {
	case <-g:
	default:
		close(g)
	}
}
