// Package supervisord_test checks @stdlib//supervisord.star against supervisord itself:
// every config of the corpus in testdata/ is read by supervisord.load_conf and by
// supervisord's own parser (dump.py, through the python3 that runs /usr/bin/supervisord),
// and the two readings are compared field by field.
package supervisord_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/plan"
)

// supervisordProcess is one process as dump.py prints it.
type supervisordProcess struct {
	Group          string            `json:"group"`
	Name           string            `json:"name"`
	Command        []string          `json:"command"`
	Directory      *string           `json:"directory"`
	Env            map[string]string `json:"env"`
	UID            *int              `json:"uid"`
	Umask          *int              `json:"umask"`
	Autostart      bool              `json:"autostart"`
	Autorestart    string            `json:"autorestart"`
	Exitcodes      []int             `json:"exitcodes"`
	Startsecs      int               `json:"startsecs"`
	Startretries   int               `json:"startretries"`
	Stopsignal     string            `json:"stopsignal"`
	Stopwaitsecs   int               `json:"stopwaitsecs"`
	Stopasgroup    bool              `json:"stopasgroup"`
	Killasgroup    bool              `json:"killasgroup"`
	Priority       int               `json:"priority"`
	RedirectStderr bool              `json:"redirect_stderr"`
	StdoutLogfile  *string           `json:"stdout_logfile"`
	StdoutMaxbytes int64             `json:"stdout_logfile_maxbytes"`
	StdoutBackups  int               `json:"stdout_logfile_backups"`
	StderrLogfile  *string           `json:"stderr_logfile"`
	StderrMaxbytes int64             `json:"stderr_logfile_maxbytes"`
	StderrBackups  int               `json:"stderr_logfile_backups"`
}

// supervisordPython returns the interpreter of /usr/bin/supervisord, or skips the test.
func supervisordPython(t *testing.T) string {
	t.Helper()
	sv, err := exec.LookPath("supervisord")
	if err != nil {
		t.Skip("supervisord is not installed (apt-get install supervisor): nothing to compare with")
	}
	data, err := os.ReadFile(sv)
	if err != nil {
		t.Skipf("cannot read %s: %v", sv, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	py, ok := strings.CutPrefix(line, "#!")
	if !ok {
		t.Skipf("%s has no #! line", sv)
	}
	fields := strings.Fields(py)
	if len(fields) == 0 {
		t.Skipf("%s: empty #! line", sv)
	}
	return fields[0]
}

// corpus copies testdata to a temporary folder (with a log/ folder, which supervisord
// wants to exist) and returns it with the sorted config files.
func corpus(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	confs, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(confs)
	if len(confs) < 30 {
		t.Fatalf("corpus has %d configs, want at least 30", len(confs))
	}
	return dir, confs
}

// loadPlan evaluates supervisord.load_conf(conf) from a deploy script in a folder of its own.
func loadPlan(t *testing.T, conf string) *plan.Plan {
	t.Helper()
	bundle := t.TempDir()
	script := fmt.Sprintf("load(\"@stdlib//supervisord.star\", \"supervisord\")\nsupervisord.load_conf(%q)\n", conf)
	entry := filepath.Join(bundle, "deploy.star")
	if err := os.WriteFile(entry, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := builtins.Eval(context.Background(), builtins.Options{
		File:  entry,
		Libs:  map[string]string{"corpus": filepath.Dir(conf)},
		Print: &bytes.Buffer{},
	})
	if err != nil {
		t.Fatalf("supervisord.load_conf: %v", err)
	}
	return p
}

func TestCorpusMatchesSupervisord(t *testing.T) {
	py := supervisordPython(t)
	dir, confs := corpus(t)
	// One interpreter for the whole corpus: starting Python costs about a second here.
	cmd := exec.Command(py, append([]string{"dump.py"}, confs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("supervisord's parser: %v\n%s", err, stderr.String())
	}
	var read map[string][]supervisordProcess
	if err := json.Unmarshal(out, &read); err != nil {
		t.Fatal(err)
	}
	for _, conf := range confs {
		t.Run(strings.TrimSuffix(filepath.Base(conf), ".conf"), func(t *testing.T) {
			want, ok := read[conf]
			if !ok {
				t.Fatalf("dump.py printed nothing for %s", conf)
			}
			compare(t, dir, loadPlan(t, conf), want)
		})
	}
}

// compare checks each supervisord process against the plan entry of the same name.
func compare(t *testing.T, dir string, p *plan.Plan, want []supervisordProcess) {
	t.Helper()
	if len(p.Programs) != len(want) {
		var got []string
		for _, pr := range p.Programs {
			got = append(got, pr.ProcessName)
		}
		t.Errorf("plan has %d processes %v, supervisord %d", len(got), got, len(want))
	}
	for _, w := range want {
		pr, ok := p.Lookup(w.Name)
		if !ok {
			t.Errorf("process %q: not in the plan", w.Name)
			continue
		}
		diff := func(field string, got, want any) {
			if !reflect.DeepEqual(got, want) {
				t.Errorf("process %q: %s: starvisor %#v, supervisord %#v", w.Name, field, got, want)
			}
		}
		group := pr.Group
		if group == "" {
			group = pr.Name
		}
		diff("group", group, w.Group)
		argv := slicesClone(w.Command)
		if len(argv) > 0 && strings.Contains(argv[0], "/") && !filepath.IsAbs(argv[0]) {
			// supervisord resolves a relative command against its own working directory;
			// starvisor against the config file's folder.
			if strings.HasSuffix(pr.Command[0], "/"+filepath.Clean(argv[0])) {
				argv[0] = pr.Command[0]
			}
		}
		diff("command", pr.Command, argv)
		wantDir := ""
		if w.Directory != nil {
			wantDir = *w.Directory
		}
		diff("directory", pr.Directory, wantDir)
		env := map[string]string{}
		for k, v := range pr.Env {
			if k != "STARVISOR_PROCESS_NUM" {
				env[k] = v
			}
		}
		if w.Env == nil {
			w.Env = map[string]string{}
		}
		diff("env", env, w.Env)
		var uid *int
		if pr.User != "" {
			u, err := user.Lookup(pr.User)
			if err != nil {
				t.Errorf("process %q: user %q: %v", w.Name, pr.User, err)
			} else {
				n, _ := strconv.Atoi(u.Uid)
				uid = &n
			}
		}
		diff("uid", uid, w.UID)
		var umask *int
		if pr.Umask != "" {
			n, err := strconv.ParseInt(pr.Umask, 8, 32)
			if err != nil {
				t.Errorf("process %q: umask %q: %v", w.Name, pr.Umask, err)
			}
			m := int(n)
			umask = &m
		}
		diff("umask", umask, w.Umask)
		diff("autostart", pr.Autostart, w.Autostart)
		diff("autorestart", pr.Autorestart, w.Autorestart)
		diff("exit_codes", pr.ExitCodes, w.Exitcodes)
		diff("start_secs", pr.StartSecs, w.Startsecs)
		diff("start_retries", pr.StartRetries, w.Startretries)
		diff("stop_signal", pr.StopSignal, w.Stopsignal)
		diff("stop_timeout", pr.StopTimeout.D().Seconds(), float64(w.Stopwaitsecs))
		diff("stop_as_group", pr.StopAsGroup, w.Stopasgroup)
		diff("kill_as_group", pr.KillAsGroup, w.Killasgroup)
		diff("priority", pr.Priority, w.Priority)
		if !w.RedirectStderr && w.StdoutLogfile != nil && w.StderrLogfile != nil && *w.StdoutLogfile == *w.StderrLogfile &&
			*w.StdoutLogfile != "AUTO" && !strings.HasPrefix(*w.StdoutLogfile, "/dev/") {
			// One file for both streams: starvisor writes it as redirect_stderr (two
			// writers would rotate it apart); the file and its content are the same.
			w.RedirectStderr, w.StderrLogfile = true, nil
		}
		diff("redirect_stderr", pr.RedirectStderr, w.RedirectStderr)
		compareLog(t, w.Name, "stdout", pr.Stdout, w.StdoutLogfile, w.StdoutMaxbytes, w.StdoutBackups, filepath.Join(p.Supervisor.LogDir, pr.ProcessName+".log"))
		compareLog(t, w.Name, "stderr", pr.Stderr, w.StderrLogfile, w.StderrMaxbytes, w.StderrBackups, filepath.Join(p.Supervisor.LogDir, pr.ProcessName+".err.log"))
	}
}

// compareLog checks one stream: supervisord's AUTO is starvisor's default log, None is
// no log, a path is the same path with the same rotation.
func compareLog(t *testing.T, name, stream string, got *plan.Log, want *string, maxBytes int64, backups int, auto string) {
	t.Helper()
	switch {
	case want == nil:
		if got != nil {
			t.Errorf("process %q: %s: starvisor logs to %q, supervisord discards it", name, stream, got.Path)
		}
		return
	case got == nil:
		t.Errorf("process %q: %s: starvisor discards it, supervisord logs to %q", name, stream, *want)
		return
	}
	path := *want
	if path == "AUTO" {
		path = auto
	}
	g := [3]any{got.Path, got.MaxBytes, got.Backups}
	w := [3]any{path, maxBytes, backups}
	if g != w {
		t.Errorf("process %q: %s: starvisor (path, max_bytes, backups) %v, supervisord %v", name, stream, g, w)
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }
