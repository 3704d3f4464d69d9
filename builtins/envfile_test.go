package builtins

import (
	"strings"
	"testing"
)

// .env values as python-dotenv and docker compose read them: a comment may follow a
// quoted value, a quote inside double quotes is escaped; what is left unclosed, or
// text after the closing quote, is an error naming the line.
func TestParseEnvFileQuotes(t *testing.T) {
	got, err := parseEnvFile([]byte("A=\"two words\"  # note\nB='x # y' # z\nC=\"say \\\"hi\\\"\"\nD=${A}-x\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"A", "two words"}, {"B", "x # y"}, {"C", `say "hi"`}, {"D", "${A}-x"}}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %q, want %q", i+1, got[i], want[i])
		}
	}
	for in, msg := range map[string]string{
		"A=\"open\n":  `1: unterminated quote in "A=\"open"`,
		"A=\"x\" y\n": `1: "y" after the closing quote`,
		"A=1\nB='x\n": `2: unterminated quote`,
	} {
		if _, err := parseEnvFile([]byte(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %s", in, err, msg)
		}
	}
}
