package launcher

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/matryer/is"
	"github.com/starvisor/starvisor/engine"
	"github.com/starvisor/starvisor/engine/plan"
)

func TestSpawnErrorsInSupervisordWords(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("\x00\x01\x02 not a program"), 0o755)
	for _, tc := range []struct {
		name string
		pr   plan.Program
		want string
	}{
		{"bare name", plan.Program{Command: []string{"no-such-command-xyz"}}, "can't find command 'no-such-command-xyz'"},
		{"path", plan.Program{Command: []string{"/nonexistent/bin/foo"}}, "can't find command '/nonexistent/bin/foo'"},
		{"directory", plan.Program{Command: []string{dir}}, "command at '" + dir + "' is a directory"},
		{"not executable", plan.Program{Command: []string{plain}}, "command at '" + plain + "' is not executable"},
		{"exec format", plan.Program{Command: []string{garbage}}, "couldn't exec " + garbage + ": ENOEXEC"},
		{"chdir", plan.Program{Command: []string{"/bin/true"}, Directory: "/nonexistent-dir-xyz"}, "couldn't chdir to /nonexistent-dir-xyz: ENOENT"},
		{"user", plan.Program{Command: []string{"/bin/true"}, User: "no-such-user-xyz"}, "unknown user 'no-such-user-xyz'"},
		{"umask", plan.Program{Command: []string{"/bin/true"}, Umask: "9"}, `invalid umask "9": want octal such as 022`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New().Start(engine.Spec{Program: tc.pr})
			if err == nil {
				syscall.Kill(-h.Pid(), syscall.SIGKILL)
				t.Fatal("started; want an error")
			}
			if err.Error() != tc.want {
				t.Fatalf("got %q, want %q", err, tc.want)
			}
		})
	}
}

func TestBareNameSearchesTheProgramsPath(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	is.NoErr(os.WriteFile(filepath.Join(dir, "mytool"), []byte("#!/bin/sh\necho found \"$@\"\n"), 0o755))
	var out buffer
	spec := engine.Spec{
		Program: plan.Program{Command: []string{"mytool", "x"}, Directory: dir},
		Env:     []string{"PATH=/nonexistent:" + dir},
		Stdout:  &out,
	}
	wait(t, start(t, spec))
	is.Equal(out.String(), "found x\n")
}

func TestDirectoryAndEnvironment(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	var out buffer
	spec := shell(`pwd; echo "$GREETING"`)
	spec.Program.Directory = dir
	spec.Env = []string{"PATH=/usr/bin:/bin", "GREETING=hello"}
	spec.Stdout = &out
	wait(t, start(t, spec))
	is.Equal(out.String(), dir+"\nhello\n")
}

// The umask reaches each child and never the daemon, even with many parallel starts.
func TestUmaskIsPerChild(t *testing.T) {
	is := is.New(t)
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	var wg sync.WaitGroup
	outs := make([]buffer, 50)
	for i := range outs {
		wg.Go(func() {
			spec := shell("umask")
			spec.Program.Umask = "077"
			spec.Stdout = &outs[i]
			h, err := New().Start(spec)
			if err != nil {
				t.Error(err)
				return
			}
			<-h.Done()
		})
	}
	dir := t.TempDir()
	for i := range 200 { // meanwhile the daemon creates files: they keep the daemon's umask
		p := filepath.Join(dir, strings.Repeat("f", 1+i%50)+string(rune('a'+i%26)))
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o666)
		is.NoErr(err)
		st, _ := f.Stat()
		f.Close()
		is.Equal(st.Mode().Perm(), os.FileMode(0o644))
	}
	wg.Wait()
	for i := range outs {
		is.Equal(outs[i].String(), "0077\n")
	}
	is.Equal(syscall.Umask(0o022), 0o022)
}

func TestUserDropsPrivilegeAndSetsHome(t *testing.T) {
	if os.Geteuid() != 0 {
		_, err := New().Start(engine.Spec{Program: plan.Program{Command: []string{"/bin/true"}, User: "root"}})
		if err == nil || !strings.HasPrefix(err.Error(), "can't drop privilege as nonroot user (user root: ") {
			t.Fatalf("got %v", err)
		}
		return
	}
	is := is.New(t)
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	var out buffer
	spec := shell(`id -u; id -g; echo "$HOME $USER $LOGNAME"; echo "$SHELL"`)
	spec.Program.User = "nobody"
	spec.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root", "USER=root", "SHELL=/bin/bash"}
	spec.Stdout = &out
	e := wait(t, start(t, spec))
	is.Equal(e.Code, 0)
	shell := loginShell("nobody")
	is.True(shell != "" && shell != "/bin/bash") // nobody's, from /etc/passwd (nologin)
	is.Equal(out.String(), u.Uid+"\n"+u.Gid+"\n"+u.HomeDir+" nobody nobody\n"+shell+"\n")

	// A HOME the program sets itself wins.
	out = buffer{}
	spec.Program.Env = map[string]string{"HOME": "/srv/app"}
	spec.Env = append(spec.Env, "HOME=/srv/app")
	spec.Stdout = &out
	wait(t, start(t, spec))
	is.True(strings.HasSuffix(out.String(), "/srv/app nobody nobody\n"+shell+"\n"))
}

// A folder the program's user may not enter fails the spawn with EACCES, which does not
// tell the chdir from the exec: the error names the folder, as supervisord's does, not
// the command ("couldn't exec /bin/sleep: EACCES" sent people to check the binary).
func TestUserDeniedFolderNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a program as another user")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	is := is.New(t)
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} { // test folders are 0700
		is.NoErr(os.Chmod(d, 0o755))
	}
	dir := filepath.Join(base, "private")
	is.NoErr(os.Mkdir(dir, 0o700))
	_, err := New().Start(engine.Spec{Program: plan.Program{Command: []string{"/bin/true"}, User: "nobody", Directory: dir}})
	is.True(err != nil)
	is.Equal(err.Error(), "couldn't chdir to "+dir+": EACCES (user nobody may not enter "+dir+")")

	// A command in such a folder: the exec, and the folder.
	script := filepath.Join(dir, "run.sh")
	is.NoErr(os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755))
	_, err = New().Start(engine.Spec{Program: plan.Program{Command: []string{script}, User: "nobody"}})
	is.True(err != nil)
	is.Equal(err.Error(), "couldn't exec "+script+": EACCES (user nobody may not enter "+dir+")")
}

func TestManyParallelStarts(t *testing.T) {
	is := is.New(t)
	var wg sync.WaitGroup
	handles := make([]engine.Handle, 200)
	for i := range handles {
		wg.Go(func() {
			spec := shell("exec sleep 1000")
			spec.Stdout = &buffer{}
			if i%2 == 0 {
				spec.Program.Umask = "022"
			}
			h, err := New().Start(spec)
			if err != nil {
				t.Error(err)
				return
			}
			handles[i] = h
		})
	}
	wg.Wait()
	for _, h := range handles {
		if h == nil {
			continue
		}
		t.Cleanup(func() { cleanup(t, h) })
	}
	for _, h := range handles {
		is.True(h != nil)
		is.NoErr(h.Signal(syscall.SIGKILL, true))
		is.Equal(wait(t, h).Signal, syscall.SIGKILL)
	}
}

// A passwd entry whose shell field is empty means /bin/sh, as login and su take it: the
// program kept root's SHELL.
func TestShellIn(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "passwd")
	is.NoErr(os.WriteFile(path, []byte("root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:\nweb:x:1001:1001::/home/web:/usr/bin/zsh\n"), 0o644))
	is.Equal(shellIn(path, "app"), "/bin/sh")
	is.Equal(shellIn(path, "web"), "/usr/bin/zsh")
	is.Equal(shellIn(path, "nobody-here"), "")
}
