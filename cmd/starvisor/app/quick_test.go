package app

import (
	"testing"

	"github.com/alecthomas/kong"
	"github.com/matryer/is"
)

func TestQuickStatusParsesAsKong(t *testing.T) {
	for _, args := range [][]string{
		{"status"}, {"status", "--json"}, {"status", "web", "workers:*", "all"},
		{"status", "--socket", "/tmp/s.sock", "web"}, {"status", "--socket=/tmp/s.sock", "--json"},
		{"status", "--socket", "/x", "--json", "db", "web"}, {"status", "--socket="}, {"status", "--json", "--json"},
	} {
		t.Run(args[len(args)-1], func(t *testing.T) {
			is := is.New(t)
			quick, ok := quickStatus(args)
			is.True(ok)
			var cli CLI
			k, err := kong.New(&cli, kong.Exit(func(int) { t.Fatal("kong exited") }))
			is.NoErr(err)
			ctx, err := k.Parse(args)
			is.NoErr(err)
			is.Equal(ctx.Command(), "status"+map[bool]string{true: " <name>", false: ""}[len(quick.Names) > 0])
			if len(cli.Status.Names) == 0 {
				cli.Status.Names = nil // kong leaves an empty slice
			}
			is.Equal(*quick, cli.Status)
		})
	}
}

// Whatever the quick parser does not know goes to kong: help, unknown or short flags,
// "--", a flag value that looks like a flag, and every other verb.
func TestQuickStatusLeavesTheRestToKong(t *testing.T) {
	for _, args := range [][]string{
		{}, {"plan"}, {"stop", "all"}, {"status", "--help"}, {"status", "-h"}, {"status", "--bogus"},
		{"status", "--", "-web"}, {"status", "--socket"}, {"status", "--socket", "--json"},
		{"status", "--json=true"}, {"status", ""}, {"status", "web", "--json"}, {"status", "web", "--json", "db"},
	} {
		if _, ok := quickStatus(args); ok {
			t.Errorf("quickStatus(%q) took it", args)
		}
	}
}
