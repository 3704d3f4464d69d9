package export

import (
	"strconv"
	"testing"
)

// Overlapping occurrences of the number ("00" twice in "1000") are not one template:
// taking them together sliced backwards and panicked, for a temp folder named so.
func TestNumTemplateOverlappingOccurrences(t *testing.T) {
	num := func(w int) string { return "{num:" + strconv.Itoa(w) + "}" }
	lit := func(s string) string { return s }
	got, ok := numTemplate([]string{"/t/1000/w00.log", "/t/1000/w01.log"}, []int{0, 1}, lit, num)
	if !ok || got != "/t/1000/w{num:2}.log" {
		t.Errorf("got %q, %v", got, ok)
	}
	// No single occurrence fits, and the two overlap: no template (it panicked).
	if got, ok := numTemplate([]string{"/t/000", "/t/x"}, []int{0, 1}, lit, num); ok {
		t.Errorf("got %q", got)
	}
}
