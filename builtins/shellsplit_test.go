package builtins

import (
	"testing"

	"github.com/matryer/is"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "a b  c", want: []string{"a", "b", "c"}},
		{in: "  ", want: nil},
		{in: `python3 -c 'print("hi there")'`, want: []string{"python3", "-c", `print("hi there")`}},
		{in: `echo "a \"b\" \$HOME \n"`, want: []string{"echo", `a "b" $HOME \n`}}, // only \ " $ ` newline escape in "..."
		{in: `a\ b c\\d`, want: []string{"a b", `c\d`}},
		{in: `x'' ""`, want: []string{"x", ""}}, // empty quotes make an (empty) word
		{in: "a\\\nb", want: []string{"ab"}},    // backslash-newline joins lines
		{in: `say $HOME`, want: []string{"say", "$HOME"}},
		{in: `a 'b`, err: `unterminated single quote in "a 'b"`},
		{in: `a "b`, err: `unterminated double quote in "a \"b"`},
		{in: `a \`, err: `trailing backslash in "a \\"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			is := is.New(t)
			got, err := splitCommand(tc.in)
			if tc.err != "" {
				is.True(err != nil)
				is.Equal(err.Error(), tc.err)
				return
			}
			is.NoErr(err)
			is.Equal(got, tc.want)
		})
	}
}
