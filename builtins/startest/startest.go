// Package startest runs .star behaviour tests for builtins and stdlib. A test file is
// split into chunks by lines holding only "---"; each chunk runs on its own through
// builtins.Eval, with the assert module of go.starlark.net/starlarktest. A comment
// `### "regexp"` marks the line where the chunk must fail and what the error must say
// (the convention of go.starlark.net's internal chunkedfile).
package startest

import (
	"fmt"
	"strconv"
	"strings"
)

// Chunk is one independently evaluated piece of a test file.
type Chunk struct {
	Line   int    // line of the file where the chunk starts (1-based)
	Source string // the chunk, preceded by blank lines so line numbers match the file
	Want   *Want  // expected failure, or nil when the chunk must succeed
}

// Want is an expected failure.
type Want struct {
	Line    int    // line holding the ### comment
	Pattern string // regexp the error must match
}

// ReadChunks splits a test file into chunks.
func ReadChunks(filename, src string) ([]Chunk, error) {
	lines := strings.Split(src, "\n")
	var chunks []Chunk
	start := 0
	flush := func(end int) error {
		c := Chunk{Line: start + 1}
		var b strings.Builder
		b.WriteString(strings.Repeat("\n", start))
		for i := start; i < end; i++ {
			line := lines[i]
			b.WriteString(line)
			b.WriteByte('\n')
			_, after, ok := strings.Cut(line, "###")
			if !ok {
				continue
			}
			if c.Want != nil {
				return fmt.Errorf("%s:%d: a chunk can fail only once; start a new chunk with ---", filename, i+1)
			}
			pat := strings.TrimSpace(after)
			if strings.HasPrefix(pat, `"`) {
				u, err := strconv.Unquote(pat)
				if err != nil {
					return fmt.Errorf("%s:%d: bad ### pattern %s: %w", filename, i+1, pat, err)
				}
				pat = u
			}
			c.Want = &Want{Line: i + 1, Pattern: pat}
		}
		c.Source = b.String()
		chunks = append(chunks, c)
		return nil
	}
	for i, line := range lines {
		if strings.TrimRight(line, " \t\r") == "---" {
			if err := flush(i); err != nil {
				return nil, err
			}
			start = i + 1
		}
	}
	if err := flush(len(lines)); err != nil {
		return nil, err
	}
	return chunks, nil
}
