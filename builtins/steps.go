package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Why the step limit looks at a few more steps before it stops a script: it stops
// after the instruction just run, and the position reported is that of the nearest
// instruction before it (in code order) that has one. A loop's head and its jump back
// have none of their own, so the error read as the line before the loop, or the
// function's first line (1:1 at top level). Over lateSteps more steps the loop shows
// the positions it runs through; the script stops at the furthest of them, in its
// body. A loop made only of jumps (`while True: pass`) shows no position of its own:
// stuckLoop finds it in the source, and the error is placed there.
const lateSteps = 16

// lateLook is what onStepLimit saw since the limit was reached.
type lateLook struct {
	fn          starlark.Callable // the innermost frame's function
	first, last syntax.Position   // the position at the limit, and the furthest since
	moved       bool              // some step showed another position
	stuckAt     string            // the loop stuckLoop found, where the error is placed
}

// onStepLimit is called at each step once the thread has run limit steps; it cancels
// the thread where the position shows the loop it is in (see lateSteps).
func (s *evalState) onStepLimit(th *starlark.Thread, limit uint64) {
	late := th.Steps - limit
	fr := th.DebugFrame(0)
	pos := fr.Position()
	switch {
	case s.late.fn == nil: // the limit's first step
		s.late = lateLook{fn: fr.Callable(), first: pos, last: pos}
	case fr.Callable() != s.late.fn:
		th.Cancel(s.stepsWhy(th, limit, false)) // a call or a return: its position is a line of its own
		return
	default:
		s.late.moved = s.late.moved || pos != s.late.first
		if after(pos, s.late.last) {
			s.late.last = pos
		}
	}
	if late < lateSteps || s.late.moved && pos != s.late.last && late < 4*lateSteps {
		th.SetMaxExecutionSteps(th.Steps + 1)
		return
	}
	th.Cancel(s.stepsWhy(th, limit, !s.late.moved))
}

// stepsWhy is the reason the step limit gives; stuck: no step showed a position of the
// loop's own, so it is looked for in the source.
func (s *evalState) stepsWhy(th *starlark.Thread, limit uint64, stuck bool) string {
	why := fmt.Sprintf("too many steps (limit %d)", limit)
	if stuck {
		if s.late.stuckAt = s.stuckLoop(th); s.late.stuckAt != "" {
			why += ": this loop never ends?"
		}
	}
	return why
}

// after says whether a comes after b in the same file.
func after(a, b syntax.Position) bool {
	return a.Line > b.Line || a.Line == b.Line && a.Col > b.Col
}

// stuckLoop finds, in the source of the innermost frame's function, the while loop that
// runs no instruction with a position: one whose body does nothing (pass, continue),
// the first such after the position the frame reports (that of the code just before the
// loop, or the function's start). Failing that, the function's only while loop. ""
// when it cannot tell.
func (s *evalState) stuckLoop(th *starlark.Thread) string {
	fr := th.DebugFrame(0)
	fn, ok := fr.Callable().(*starlark.Function)
	if !ok {
		return ""
	}
	reported := fr.Position()
	at := fn.Position()
	f := s.parsed(at.Filename())
	if f == nil {
		return ""
	}
	body := f.Stmts
	if fn.Name() != "<toplevel>" {
		body = nil
		syntax.Walk(f, func(n syntax.Node) bool {
			if d, ok := n.(*syntax.DefStmt); ok && d.Def.Line == at.Line && d.Name.Name == fn.Name() {
				body = d.Body
			}
			return body == nil
		})
	}
	var loops, empty []*syntax.WhileStmt
	for _, st := range body {
		syntax.Walk(st, func(n syntax.Node) bool {
			switch n := n.(type) {
			case *syntax.DefStmt, *syntax.LambdaExpr:
				return false // another function's
			case *syntax.WhileStmt:
				loops = append(loops, n)
				if doesNothing(n.Body) && !after(reported, n.While) && literal(n.Cond) != "false" {
					empty = append(empty, n) // in source order: the first is the nearest
				}
			}
			return true
		})
	}
	for _, l := range empty {
		if literal(l.Cond) == "true" { // while True: the likeliest never to end
			return posString(l.While)
		}
	}
	switch {
	case len(empty) > 0:
		return posString(empty[0].While)
	case len(empty) == 0 && len(loops) == 1:
		return posString(loops[0].While)
	}
	return ""
}

// doesNothing says whether a loop body is only pass and continue.
func doesNothing(body []syntax.Stmt) bool {
	for _, st := range body {
		switch st := st.(type) {
		case *syntax.BranchStmt:
			if st.Token != syntax.PASS && st.Token != syntax.CONTINUE {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// literal says whether a loop condition is a constant: "true" (True, a non-zero number),
// "false" (False, None, 0), or "" when it is not one.
func literal(e syntax.Expr) string {
	switch e := e.(type) {
	case *syntax.Ident:
		switch e.Name {
		case "True":
			return "true"
		case "False", "None":
			return "false"
		}
	case *syntax.Literal:
		if e.Token == syntax.INT {
			if e.Raw == "0" {
				return "false"
			}
			return "true"
		}
	}
	return ""
}

// argAt is the position of the keyword argument name of the call whose parenthesis is at
// call, in a file this evaluation read; "" when there is none. A builtin's error names
// the parameter but the stack holds only the call: in a program(...) written over ten
// lines, the line to fix is the keyword's.
func (s *evalState) argAt(call syntax.Position, name string) string {
	f := s.parsed(call.Filename())
	if f == nil {
		return ""
	}
	at := ""
	syntax.Walk(f, func(n syntax.Node) bool {
		c, ok := n.(*syntax.CallExpr)
		if !ok || at != "" {
			return at == ""
		}
		if c.Lparen.Line != call.Line || c.Lparen.Col != call.Col {
			return true
		}
		for _, a := range c.Args {
			if b, ok := a.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
				if id, ok := b.X.(*syntax.Ident); ok && id.Name == name {
					at = posString(id.NamePos)
				}
			}
		}
		return false
	})
	return at
}

// source is the text of a file this evaluation ran (or tried to), nil if none.
func (s *evalState) source(file string) []byte {
	if e, ok := s.modules[file]; ok {
		return e.src
	}
	return nil
}

// parsed is the syntax tree of a file this evaluation read, parsed again from its source
// (kept for the errors that look into it); nil when there is none.

func (s *evalState) parsed(file string) *syntax.File {
	e, ok := s.modules[file]
	if !ok || e.src == nil {
		return nil
	}
	f, err := fileOptions.Parse(file, e.src, 0)
	if err != nil {
		return nil
	}
	return f
}
