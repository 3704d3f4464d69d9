package app

import (
	"bytes"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// useColor: w is a terminal, and neither NO_COLOR (no-color.org) nor TERM=dumb says
// otherwise. Labels of several processes' lines are coloured then, as pm2 logs and
// docker compose show them; a pipe or a file gets plain text.
func useColor(w io.Writer, lookupEnv func(string) (string, bool)) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	if v, set := lookupEnv("NO_COLOR"); set && v != "" {
		return false
	}
	if t, _ := lookupEnv("TERM"); t == "dumb" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// labelColors avoid red, which reads as an error, and the terminal's own colours.
var labelColors = []string{"36", "32", "33", "35", "34", "96", "92", "93", "95", "94"}

// colorLabel wraps label (a process's name, padded, with ".err" for its stderr) in the
// n-th colour: the caller numbers the processes, so neighbours differ (a hash of the
// name gave two of four processes one colour).
func colorLabel(label string, n int) string {
	return "\x1b[" + labelColors[n%len(labelColors)] + "m" + label + "\x1b[0m"
}

// labelName is the process a label names: without padding, or ".err" for its stderr.
func labelName(label string) string {
	return strings.TrimSuffix(strings.TrimRight(label, " "), ".err")
}

// colorLines colours the label of each labelled line written through it ("web    | ..."),
// passing the rest as it is; an unfinished line waits for its end (or Flush).
type colorLines struct {
	w       io.Writer
	pending []byte
	numbers map[string]int // each process's colour, in the order they first speak
	// plain: the first line had no label (one log, as it is): from then on everything
	// passes at once, an unfinished line (a prompt) too.
	plain bool
}

func (c *colorLines) Write(p []byte) (int, error) {
	if c.plain {
		return c.w.Write(p)
	}
	c.pending = append(c.pending, p...)
	if i := bytes.IndexByte(c.pending, '\n'); i >= 0 && !labelled(c.pending[:i]) && len(c.numbers) == 0 {
		c.plain = true
		_, err := c.w.Write(c.pending)
		c.pending = nil
		return len(p), err
	}
	var out []byte
	for {
		i := bytes.IndexByte(c.pending, '\n')
		if i < 0 {
			break
		}
		out = c.appendColored(out, c.pending[:i+1])
		c.pending = c.pending[i+1:]
	}
	if len(out) > 0 {
		if _, err := c.w.Write(out); err != nil {
			return 0, err
		}
	}
	if len(c.pending) == 0 {
		c.pending = nil // let a big batch's buffer go
	}
	return len(p), nil
}

// Flush writes an unfinished last line.
func (c *colorLines) Flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.w.Write(c.appendColored(nil, c.pending))
	c.pending = nil
	return err
}

// labelled says whether line starts with a label: a name (no blank in it), padding,
// then " | ", within its first 80 bytes.
func labelled(line []byte) bool {
	head := line[:min(len(line), 80)]
	i := bytes.Index(head, []byte(" | "))
	return i > 0 && bytes.IndexByte(bytes.TrimRight(head[:i], " "), ' ') < 0
}

// appendColored appends line with its label coloured, when it has one.
func (c *colorLines) appendColored(dst, line []byte) []byte {
	if !labelled(line) {
		return append(dst, line...)
	}
	i := bytes.Index(line, []byte(" | "))
	label := string(line[:i])
	if c.numbers == nil {
		c.numbers = map[string]int{}
	}
	n, ok := c.numbers[labelName(label)]
	if !ok {
		n = len(c.numbers)
		c.numbers[labelName(label)] = n
	}
	dst = append(dst, colorLabel(label, n)...)
	return append(dst, line[i:]...)
}
