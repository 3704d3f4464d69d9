package plan

import (
	"container/heap"
	"slices"
	"strings"
)

// Rank is where a program's priority puts it, as supervisord orders: by its group's
// priority (a group() with one; else the program's own, as supervisord makes each
// program a group of its own), then by its own priority.
type Rank [2]int

// Ranker returns the Rank of a program of a plan with these groups.
func Ranker(groups []Group) func(*Program) Rank {
	prio := map[string]int{}
	for _, g := range groups {
		prio[g.Name] = g.Priority
	}
	return func(pr *Program) Rank {
		if g, ok := prio[pr.Group]; ok && pr.Group != "" {
			return Rank{g, pr.Priority}
		}
		return Rank{pr.Priority, pr.Priority}
	}
}

// startOrder returns progs in start order. Among the entries whose dependencies
// have all been placed, the one with the lowest (rank, process_name) goes next
// (Kahn's algorithm with a min-heap). So priority decides wherever depends_on
// allows, a program always follows everything it depends on even when its own
// priority is lower, and the result does not depend on the input order. progs must
// be valid: every dependency exists and there is no cycle.
func startOrder(progs []Program, groups []Group) []Program {
	_, idx := byProgram(progs)
	// A process waits for every process of every program it depends on.
	waits := make([]int, len(progs))
	dependents := map[string][]int{} // program name -> entries that depend on it
	for i := range progs {
		ds := progs[i].DependsOn
		for k, d := range ds {
			if slices.Contains(ds[:k], d) { // listed twice; lists are short
				continue
			}
			waits[i] += len(idx[d])
			dependents[d] = append(dependents[d], i)
		}
	}
	q := &readyQueue{progs: progs, rank: Ranker(groups)}
	for i := range progs {
		if waits[i] == 0 {
			q.items = append(q.items, i)
		}
	}
	heap.Init(q)
	out := make([]Program, 0, len(progs))
	for q.Len() > 0 {
		i := heap.Pop(q).(int)
		out = append(out, progs[i])
		for _, j := range dependents[progs[i].Name] {
			if waits[j]--; waits[j] == 0 {
				heap.Push(q, j)
			}
		}
	}
	if len(out) != len(progs) {
		panic("plan: startOrder called on a plan with a dependency cycle") // Validate rules this out
	}
	return out
}

// readyQueue is a min-heap of entry indices by (rank, process name).
type readyQueue struct {
	progs []Program
	rank  func(*Program) Rank
	items []int
}

func (q *readyQueue) Len() int { return len(q.items) }

func (q *readyQueue) Less(a, b int) bool {
	x, y := &q.progs[q.items[a]], &q.progs[q.items[b]]
	if rx, ry := q.rank(x), q.rank(y); rx != ry {
		return rx[0] < ry[0] || rx[0] == ry[0] && rx[1] < ry[1]
	}
	return naturalLess(x.ProcessName, y.ProcessName)
}

// naturalLess orders names as a person counts: worker_2 before worker_10 (a pool of a
// dozen listed worker_0, worker_1, worker_10, worker_11, worker_2). Runs of digits
// compare by value; a tie (01 and 1) falls back to plain order.
func naturalLess(a, b string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			ei, ej := digitsEnd(a, i), digitsEnd(b, j)
			x, y := strings.TrimLeft(a[i:ei], "0"), strings.TrimLeft(b[j:ej], "0")
			if len(x) != len(y) {
				return len(x) < len(y)
			}
			if x != y {
				return x < y
			}
			i, j = ei, ej
			continue
		}
		if a[i] != b[j] {
			return a[i] < b[j]
		}
		i++
		j++
	}
	if len(a)-i != len(b)-j {
		return len(a)-i < len(b)-j
	}
	return a < b
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func (q *readyQueue) Swap(a, b int) { q.items[a], q.items[b] = q.items[b], q.items[a] }

func (q *readyQueue) Push(x any) { q.items = append(q.items, x.(int)) }

func (q *readyQueue) Pop() any {
	n := len(q.items) - 1
	x := q.items[n]
	q.items = q.items[:n]
	return x
}
