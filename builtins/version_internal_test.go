package builtins

import (
	"testing"

	"github.com/matryer/is"
)

func TestEmbeddedVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		ok   bool
	}{
		{"your_project_v10", Version{Major: 10}, true},
		{"/bundle/your_project_v9/", Version{Major: 9}, true},
		{"app-1.2.3", Version{Major: 1, Minor: 2, Patch: 3}, true},
		{"/v2/app-7.1", Version{Major: 7, Minor: 1}, true}, // only the base name counts
		{"py3.11_build2", Version{Major: 2}, true},         // the last number wins
		{"readme", Version{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			is := is.New(t)
			got, ok := embeddedVersion(tc.in)
			is.Equal(ok, tc.ok)
			got.src = ""
			is.Equal(got, tc.want)
		})
	}
}

func TestCompareVersions(t *testing.T) {
	is := is.New(t)
	v := func(s string) Version {
		x, err := parseVersion(s)
		is.NoErr(err)
		return x
	}
	is.Equal(compareVersions(v("1.10.0"), v("1.9.9")), 1)
	is.Equal(compareVersions(v("v2"), v("2.0.0")), 0)
	is.Equal(compareVersions(v("2.0.0-rc1"), v("2.0.0")), -1)
	is.Equal(compareVersions(v("2.0.0-alpha"), v("2.0.0-beta")), -1)
	// Pre-releases by identifier, numbers by value (an rc.9 -> rc.10 deploy kept rc.9).
	is.Equal(compareVersions(v("2.0.0-rc.10"), v("2.0.0-rc.9")), 1)
	is.Equal(compareVersions(v("2.0.0-rc10"), v("2.0.0-rc9")), 1)
	is.Equal(compareVersions(v("2.0.0-rc.2"), v("2.0.0-rc.10")), -1)
	is.Equal(compareVersions(v("2.0.0-rc"), v("2.0.0-rc.1")), -1)
	is.Equal(compareVersions(v("2.0.0-1"), v("2.0.0-alpha")), -1) // numeric below alphanumeric
	is.Equal(compareVersions(v("2.0.0-rc.010"), v("2.0.0-rc.10")), 0)
	// Build metadata parses and does not order.
	is.Equal(compareVersions(v("1.2.3+b1"), v("1.2.3+b2")), 0)
	is.Equal(compareVersions(v("1.2.3+b1"), v("1.2.2")), 1)
	is.Equal(compareVersions(v("1.2.3-rc.1+exp.sha.5114f85"), v("1.2.3-rc.1")), 0)
	_, err := parseVersion("1.2.3.4")
	is.True(err != nil)
}
