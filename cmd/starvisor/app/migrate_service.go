package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/starvisor/starvisor/builtins"
	"github.com/starvisor/starvisor/engine/export"
	"github.com/starvisor/starvisor/engine/plan"
)

// ServiceCmd installs or removes the systemd unit of this deployment's daemon.
type ServiceCmd struct {
	Install   ServiceInstallCmd   `cmd:"" help:"Write starvisor-<deploy>.service running 'starvisor up' on this script."`
	Uninstall ServiceUninstallCmd `cmd:"" help:"Remove starvisor-<deploy>.service."`
}

// serviceFlags are shared by install and uninstall.
type serviceFlags struct {
	scriptFlags
	DryRun  bool   `help:"Print what would be written or removed; change nothing."`
	UnitDir string `type:"path" placeholder:"DIR" help:"Folder of systemd units (default /etc/systemd/system; with --user, ~/.config/systemd/user)."`
	User    bool   `help:"A unit of your own systemd manager (systemctl --user), the default when not root: starvisor runs as you, at boot with loginctl enable-linger."`
	Name    string `help:"Deployment name; default: the deploy script's folder name."`
	Force   bool   `help:"Replace a unit written for another script (install), or remove one still enabled (uninstall)."`
}

// settle picks, for the flags left out, what fits who runs it: not root, a user unit
// (the system's folder is not writable, and a system unit would run it all as root).
func (s *serviceFlags) settle(d *Deps) {
	if os.Geteuid() != 0 {
		s.User = true
	}
	if s.UnitDir != "" {
		return
	}
	s.UnitDir = "/etc/systemd/system"
	if s.User {
		base, ok := d.LookupEnv("XDG_CONFIG_HOME")
		if home, err := os.UserHomeDir(); (!ok || base == "") && err == nil {
			base = filepath.Join(home, ".config")
		}
		s.UnitDir = filepath.Join(base, "systemd", "user")
	}
}

// systemctl is the command for the unit's manager.
func (s *serviceFlags) systemctl() string {
	if s.User {
		return "systemctl --user"
	}
	return "systemctl"
}

// unit evaluates the script (so a broken one is never installed) and renders the unit.
func (s *serviceFlags) unit(d *Deps) (export.File, error) {
	p, err := s.eval(context.Background(), d)
	if err != nil {
		return export.File{}, err
	}
	bin, err := os.Executable()
	if err == nil {
		bin, err = filepath.EvalSymlinks(bin)
	}
	if err != nil {
		return export.File{}, fmt.Errorf("service: this binary's path: %w", err)
	}
	name := s.Name
	if name == "" {
		name = filepath.Base(p.Root)
	}
	libsEnv, _ := d.LookupEnv("STARVISOR_LIBS")
	libs, err := builtins.ParseLibs(s.Lib, libsEnv) // parsed once already by eval
	if err != nil {
		return export.File{}, usageError(err)
	}
	// Every library root given: a script may read one only through fs.glob, which
	// records nothing in the plan's inputs.
	env := map[string]string{}
	// A bare command name is looked up in PATH at spawn: systemd's is not this shell's
	// (pyenv, a venv on PATH, /usr/local/bin). Every such program named: one was, as if
	// the others did not depend on it.
	var byPath []string
	for _, pr := range p.Programs {
		if len(pr.Command) > 0 && !strings.Contains(pr.Command[0], "/") && !slices.Contains(byPath, fmt.Sprintf("%s (%q)", pr.Name, pr.Command[0])) {
			byPath = append(byPath, fmt.Sprintf("%s (%q)", pr.Name, pr.Command[0]))
		}
	}
	if path, ok := d.LookupEnv("PATH"); ok && len(byPath) > 0 {
		env["PATH"] = path
		fmt.Fprintf(d.Stderr, "starvisor: service: %s by PATH: the unit sets this shell's PATH\n", strings.Join(capped(byPath, 10), ", ")+map[bool]string{true: " runs its command", false: " run their commands"}[len(byPath) == 1])
	}
	for k := range p.Inputs.Env {
		if strings.HasPrefix(k, "host.") || k == "STARVISOR_LIBS" {
			continue // host.name() and its kind: the machine's own
		}
		if v, ok := d.LookupEnv(k); ok {
			env[k] = v
			fmt.Fprintf(d.Stderr, "starvisor: service: the script reads %s: the unit sets it as now, %s=%s\n", k, k, plan.EnvShown(k, v, true))
			if plan.SecretValue(k, v) {
				fmt.Fprintf(d.Stderr, "starvisor: service: warning: %s is in the unit's Environment=, which systemctl show gives any user (systemd.exec(5)): move it to an EnvironmentFile= of mode 0600, or LoadCredential=\n", k)
			}
		}
	}
	return export.ServiceUnit(export.Service{Binary: bin, Script: filepath.Join(p.Root, p.Entry), Deploy: name,
		Libs: libs, Env: env, User: s.User, StopWithin: p.WorstStop()})
}

// ServiceInstallCmd writes the unit.
type ServiceInstallCmd struct{ serviceFlags }

// Run writes the unit atomically (or prints it with --dry-run) and the commands to run next.
func (c *ServiceInstallCmd) Run(d *Deps) error {
	c.settle(d)
	f, err := c.unit(d)
	if err != nil {
		return err
	}
	path := filepath.Join(c.UnitDir, f.Name)
	// The unit is named after the bundle's folder: two bundles called shop, or every
	// release/current/ layout, would replace each other's unit without a word.
	script, _ := filepath.Abs(c.File)
	if old, err := os.ReadFile(path); err == nil && !c.Force && !bytes.Contains(old, []byte(execStartScript(script))) {
		return fmt.Errorf("service install: %s runs another script than %s: give this one --name NAME (or --force to replace it)", path, script)
	}
	if c.DryRun {
		fmt.Fprintf(d.Stdout, "# would write %s\n%s# then:\n", path, f.Data)
		for _, step := range c.nextSteps(script, path, f.Name) {
			fmt.Fprintf(d.Stdout, "#   %s\n", step) // what a real install says next
		}
		return nil
	}
	if c.User {
		if err := os.MkdirAll(c.UnitDir, 0o755); err != nil {
			return fmt.Errorf("service install: %w", err)
		}
	}
	if err := export.Write(c.UnitDir, []export.File{f}); err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	fmt.Fprintf(d.Stdout, "wrote %s\nnext:\n", path)
	for _, step := range c.nextSteps(script, path, f.Name) {
		fmt.Fprintf(d.Stdout, "  %s\n", step)
	}
	return nil
}

// nextSteps are the commands to run once the unit at path (named name) is written.
func (c *ServiceInstallCmd) nextSteps(script, path, name string) []string {
	var steps []string
	if s := socketInLocks(append(rootLockPaths(script), lockPath(filepath.Join(filepath.Dir(script), "run")))...); s != "" {
		// The unit's up would find the bundle locked by the daemon running now, and fail.
		steps = append(steps, fmt.Sprintf("starvisor shutdown -f %s   # its daemon runs now, outside systemd", script))
	}
	searched := []string{"/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
	if c.User {
		searched = []string{c.UnitDir} // settle's default: the user manager's own folder
		if home, err := os.UserHomeDir(); err == nil {
			searched = append(searched, filepath.Join(home, ".config", "systemd", "user"))
		}
	}
	if !slices.Contains(searched, filepath.Clean(c.UnitDir)) {
		// A folder systemd does not search: the unit is linked in by its path.
		steps = append(steps, fmt.Sprintf("%s link %s", c.systemctl(), quoteArg(path)))
	}
	// Quoted for pasting: a folder with a blank makes a unit named starvisor-a\x20b.service.
	steps = append(steps, c.systemctl()+" daemon-reload", fmt.Sprintf("%s enable --now %s", c.systemctl(), quoteArg(name)))
	if c.User {
		// A user's manager runs while the user is logged in; lingering starts it at boot.
		steps = append(steps, "loginctl enable-linger   # so it starts at boot, without a login")
	}
	return steps
}

// execStartScript is how a unit's ExecStart names script (export.ServiceUnit).
func execStartScript(script string) string {
	return " up -f " + export.SystemdWord(script)
}

// ServiceUninstallCmd removes the unit.
type ServiceUninstallCmd struct{ serviceFlags }

// Help says what of the shared flags uninstall reads: it evaluates no script.
func (c *ServiceUninstallCmd) Help() string {
	return "The unit is found by name (--name, else the folder of the script -f names); the script is not evaluated, so a broken or removed one does not stand in the way, and --lib is not read."
}

// Run removes the unit (or says it would) and prints the commands to run first/next.
func (c *ServiceUninstallCmd) Run(d *Deps) error {
	c.settle(d)
	// By name, without evaluating the script: it may be broken or gone by now. The unit's
	// own name (copied from systemctl) is taken too.
	name, script := strings.TrimSuffix(strings.TrimPrefix(c.Name, "starvisor-"), ".service"), ""
	if name == "" {
		if err := c.locate(); err != nil {
			return err
		}
		abs, err := filepath.Abs(c.File)
		if err != nil {
			return fmt.Errorf("service uninstall: %w", err)
		}
		name, script = filepath.Base(filepath.Dir(abs)), abs
	}
	f := export.File{Name: export.ServiceUnitName(name)}
	path := filepath.Join(c.UnitDir, f.Name)
	// Named after the folder: another bundle of that name may own it (install refuses
	// the same clash).
	if old, err := os.ReadFile(path); err == nil && script != "" && !c.Force && !bytes.Contains(old, []byte(execStartScript(script))) {
		return fmt.Errorf("service uninstall: %s runs another script than %s: give --name to remove it anyway", path, script)
	}
	// Removed while enabled, systemctl can no longer disable it ("does not exist"), and
	// its wants/ link stays behind.
	if wants, _ := filepath.Glob(filepath.Join(c.UnitDir, "*.wants", f.Name)); len(wants) > 0 && !c.Force {
		return fmt.Errorf("service uninstall: %s is enabled (%s): first %s disable --now %s", f.Name, wants[0], c.systemctl(), quoteArg(f.Name))
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(d.Stderr, "service uninstall: %s is not installed\n", path)
		return reported(ExitFailure)
	}
	if c.DryRun {
		fmt.Fprintf(d.Stdout, "would remove %s\n", path)
		return nil
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(d.Stderr, "service uninstall: %s is not installed\n", path)
			return reported(ExitFailure)
		}
		return fmt.Errorf("service uninstall: %w", err)
	}
	fmt.Fprintf(d.Stdout, "removed %s\nnext:\n  %s daemon-reload\n", path, c.systemctl())
	return nil
}
