package logs

import (
	"testing"

	"github.com/matryer/is"
)

func TestWidth(t *testing.T) {
	is := is.New(t)
	for s, want := range map[string]int{
		"web": 3, "prög": 4, "サービス": 8, "名": 2, "🙂": 2, "e\u0301": 1, "a\u200bb": 2, "한국": 4, "ｗ": 2, "": 0,
	} {
		is.Equal(Width(s), want) // s
	}
	is.Equal(Pad("サービス", 10)+"|", "サービス  |")
	is.Equal(Pad("web", 2), "web")
}
