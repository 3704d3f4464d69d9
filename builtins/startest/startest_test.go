package startest

import (
	"testing"

	"github.com/matryer/is"
)

func TestReadChunks(t *testing.T) {
	is := is.New(t)
	chunks, err := ReadChunks("t.star", "a = 1\n---\nb = 2\nfail(\"x\") ### \"fail: x\"\n---\nc ### raw [re]gexp\n")
	is.NoErr(err)
	is.Equal(len(chunks), 3)
	is.Equal(chunks[0], Chunk{Line: 1, Source: "a = 1\n"})
	is.Equal(chunks[1].Line, 3)
	is.Equal(chunks[1].Source, "\n\nb = 2\nfail(\"x\") ### \"fail: x\"\n") // padded: line numbers match the file
	is.Equal(*chunks[1].Want, Want{Line: 4, Pattern: "fail: x"})
	is.Equal(*chunks[2].Want, Want{Line: 6, Pattern: "raw [re]gexp"})

	_, err = ReadChunks("t.star", "a ### \"one\"\nb ### \"two\"\n")
	is.Equal(err.Error(), "t.star:2: a chunk can fail only once; start a new chunk with ---")
	_, err = ReadChunks("t.star", "a ### \"bad\\q\"\n")
	is.True(err != nil)
}
