package app

import (
	"bytes"
	"strings"
	"testing"

	"github.com/starvisor/starvisor/engine/api"
)

// The table's CPU and MEM are of the process tree, as memory_max judges it: a wrapper
// shell showed its own 1.5M while its worker was restarted for 175M.
func TestStatusTableShowsTheTree(t *testing.T) {
	var out bytes.Buffer
	err := writeStatus(&out, api.StatusResponse{Programs: []api.ProgramStatus{
		{Name: "wrapped", Group: "wrapped", State: "RUNNING", Pid: 10, CPUPercent: 0.1, RSSBytes: 1536 << 10, TreeCPU: 42, TreeRSS: 175 << 20},
		{Name: "alone", Group: "alone", State: "RUNNING", Pid: 11, CPUPercent: 3, RSSBytes: 20 << 20},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"42.0%", "175", "3.0%", "20"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "1.5M") {
		t.Errorf("status table shows the wrapper's own memory:\n%s", out.String())
	}
}
