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
		"A=\"open\nB=1\n": `1: unterminated quote in "A=\"open" (no closing " down to the file's end)`,
		"A=\"x\" y\n":     `1: "y" after the closing quote`,
		"A=1\nB='x\n":     `2: unterminated quote`,
	} {
		if _, err := parseEnvFile([]byte(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %s", in, err, msg)
		}
	}
}

// A quoted value may span lines (a PEM key), and a bare KEY line sets nothing, as
// python-dotenv reads them: such files failed the whole script.
func TestParseEnvFileMultilineAndBareKey(t *testing.T) {
	got, err := parseEnvFile([]byte("PEM=\"-----BEGIN-----\r\nabc\n-----END-----\" # key\nPASS_THROUGH\nALSO # passed through\nexport B='one\n  two'\nC=3\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"PEM", "-----BEGIN-----\nabc\n-----END-----"}, {"B", "one\n  two"}, {"C", "3"}}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("variable %d: got %q, want %q", i+1, got[i], want[i])
		}
	}
	// A line that is neither is still an error, naming its line.
	if _, err := parseEnvFile([]byte("A=1\nAPP_MODE production\n")); err == nil || !strings.Contains(err.Error(), `2: got "APP_MODE production", want KEY=VALUE`) {
		t.Errorf("got %v", err)
	}
}
