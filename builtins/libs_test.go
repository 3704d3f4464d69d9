package builtins_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/matryer/is"

	"github.com/starvisor/starvisor/builtins"
)

func TestParseLibs(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
		env   string
		want  map[string]string
		err   string
	}{
		{name: "none", want: map[string]string{}},
		{name: "env", env: "a=/x:b=/y/../z:", want: map[string]string{"a": "/x", "b": "/z"}},
		{name: "flag overrides env", flags: []string{"a=/f"}, env: "a=/e", want: map[string]string{"a": "/f"}},
		{name: "relative made absolute", flags: []string{"ops=lib"}, want: map[string]string{"ops": filepath.Join(wd, "lib")}},
		{name: "no equals", flags: []string{"ops"}, err: `parse libs: --lib "ops": want NAME=DIR`},
		{name: "empty dir", env: "ops=", err: `parse libs: STARVISOR_LIBS "ops=": want NAME=DIR`},
		{name: "twice", flags: []string{"a=/x", "a=/y"}, err: `parse libs: --lib: library "a" given twice`},
		{name: "reserved", flags: []string{"stdlib=/x"}, err: `parse libs: --lib: library name "stdlib" is reserved for the embedded library`},
		{name: "bad name", env: "a/b=/x", err: `parse libs: STARVISOR_LIBS: library name "a/b": want letters, digits, '_', '.' or '-'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			got, err := builtins.ParseLibs(tc.flags, tc.env)
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
