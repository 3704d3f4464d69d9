package builtins

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Error is a failed evaluation: where it failed, why, and the Starlark calls that led
// there. File names are relative to the bundle root ("lib/a.star"), or "@NAME//path" and
// "@stdlib//path" for library files.
type Error struct {
	Pos   string   // "file:line:col" of the failing statement or call
	Msg   string   // what went wrong, e.g. "program: start_retries: got -2, want >= -1"
	Stack []string // "file:line:col: in fn", outermost call first; empty for a syntax error in the entry script
	err   error
}

// Error returns "file:line:col: message", then the call stack when there is one.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos != "" {
		b.WriteString(e.Pos)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if len(e.Stack) > 0 {
		b.WriteString("\nTraceback (most recent call last):")
		for _, f := range e.Stack {
			b.WriteString("\n  ")
			b.WriteString(f)
		}
	}
	return b.String()
}

// Unwrap returns the error Starlark reported.
func (e *Error) Unwrap() error { return e.err }

// newError turns an error from evaluating the entry script into an *Error.
// A failure inside a loaded file arrives as nested errors ("cannot load b.star: ...");
// since every file runs on the same thread, the innermost EvalError holds the whole
// stack, and the innermost syntax or resolve error, if any, holds the real position.
// s.late.stuckAt, when not "", is the innermost frame's true position, which the stack
// does not know (the loop the step limit stopped in: see lateSteps); s.argAt finds a
// keyword argument of a call: an error about one is placed on its line, not on the
// call's first. A parse or resolve error gets a hint at the likely mistake (hints.go).
func newError(err error, s *evalState) error {
	var inner *starlark.EvalError
	var pos syntax.Position
	var msgs []string
walk:
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch x := e.(type) {
		case *starlark.EvalError:
			inner = x
			continue
		case syntax.Error:
			pos, msgs = x.Pos, []string{x.Msg}
			if strings.HasPrefix(x.Msg, "got newline,") && pos.Col == 1 && pos.Line > 1 {
				// The parser places the newline token at the start of the next line: the
				// missing ':' of line 20 was reported at 21:1, where an editor jumps.
				pos.Line--
				msgs[0] += " (at the end of the line)"
			} else if h, at := syntaxHint(s.source(pos.Filename()), pos, x.Msg); h != "" {
				pos, msgs[0] = at, msgs[0]+" ("+h+")"
			}
		case resolve.ErrorList:
			pos = x[0].Pos
			for i, r := range x {
				if name, ok := strings.CutPrefix(r.Msg, "undefined: "); ok {
					if h := s.undefinedHint(r.Pos.Filename(), name); h != "" {
						r.Msg += " (" + h + ")"
					}
				}
				if i == 0 {
					msgs = append(msgs, r.Msg)
				} else {
					msgs = append(msgs, r.Error()) // later problems keep their own position
				}
			}
		default:
			continue
		}
		break walk
	}
	out := &Error{err: err}
	if inner != nil {
		var frames []string
		var innermost syntax.Position // the last frame's, when a builtin was called from it
		for i, fr := range inner.CallStack {
			if fr.Pos.Filename() == builtinFilename {
				continue
			}
			innermost = syntax.Position{}
			if i == len(inner.CallStack)-2 && inner.CallStack[i+1].Pos.Filename() == builtinFilename {
				innermost = fr.Pos
			}
			at := posString(fr.Pos)
			if i == len(inner.CallStack)-1 && s.late.stuckAt != "" {
				at = s.late.stuckAt
			}
			frames = append(frames, at+": in "+fr.Name)
			// The position is the user's: the innermost call outside the embedded
			// standard library (a bad argument to python.venv is the caller's line).
			if out.Pos == "" || !strings.HasPrefix(fr.Pos.Filename(), stdlibPrefix) {
				out.Pos = at
			}
		}
		out.Stack = shortStack(frames)
		out.Msg = inner.Msg
		if strings.HasPrefix(out.Msg, "unknown conversion %") && len(out.Msg) > len("unknown conversion %") &&
			strings.ContainsAny(out.Msg[len("unknown conversion %"):][:1], "0123456789-.+ #") {
			// Python's "misc%03d" % i: Starlark's % takes no widths or flags.
			out.Msg += ` (Starlark's % takes no widths or flags, unlike Python's: ("00" + str(i))[-3:] pads i to 3 digits)`
		}
		if at := keywordAt(s.argAt, innermost, inner.Msg); at != "" && (out.Pos == posString(innermost) || out.Pos == "") {
			out.Pos = at
		}
	}
	if msgs != nil {
		out.Pos, out.Msg = posString(pos), strings.Join(msgs, "\n")
	}
	if out.Msg == "" {
		out.Msg = err.Error()
	}
	return out
}

// keywordOf finds the keyword argument a builtin's error is about: "program: start_secs:
// got ..." and "program: unexpected keyword argument \"startsecs\" ...".
var keywordOf = regexp.MustCompile(`^[\w.]+: (?:unexpected keyword argument "(\w+)"|(\w+): )`)

// keywordAt is the position of the keyword argument msg is about in the call at call, or
// "" when msg is about none or the call has no such argument (passed positionally).
func keywordAt(argAt func(syntax.Position, string) string, call syntax.Position, msg string) string {
	m := keywordOf.FindStringSubmatch(msg)
	if argAt == nil || !call.IsValid() || m == nil {
		return ""
	}
	name := m[1] + m[2]
	return argAt(call, name)
}

// maxStackLines bounds a printed stack: runaway recursion stopped by the step limit
// would otherwise print one line per call.
const maxStackLines = 40

// shortStack folds runs of identical frames (recursion) into one line and a count, and
// keeps the outermost and innermost frames of what is still too long.
func shortStack(frames []string) []string {
	var out []string
	for i := 0; i < len(frames); {
		j := i + 1
		for j < len(frames) && frames[j] == frames[i] {
			j++
		}
		out = append(out, frames[i])
		if n := j - i - 1; n > 0 {
			out = append(out, fmt.Sprintf("[previous line repeated %d more times]", n))
		}
		i = j
	}
	if len(out) > maxStackLines {
		half := maxStackLines / 2
		elided := fmt.Sprintf("[%d lines elided]", len(out)-2*half)
		out = append(append(out[:half:half], elided), out[len(out)-half:]...)
	}
	return out
}
