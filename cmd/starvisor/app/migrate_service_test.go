package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServiceInstallUninstall(t *testing.T) {
	script := shopBundle(t, "a")
	units := t.TempDir()
	unit := filepath.Join(units, "starvisor-shop.service")

	code, out, errs := run(t, nil, "service", "install", "--dry-run", "-f", script, "--unit-dir", units)
	if code != 0 || !strings.Contains(out, "up -f "+script) || !strings.Contains(out, "KillMode=mixed") || !strings.Contains(out, "Restart=on-failure") {
		t.Fatalf("dry run: code %d\n%s\n%s", code, out, errs)
	}
	// What the install would say next, as comments: the dry run left them out.
	if !strings.Contains(out, "\n# then:\n") || !strings.Contains(out, "\n#   systemctl enable --now starvisor-shop.service\n") {
		t.Fatalf("dry run without its next steps:\n%s", out)
	}
	if _, err := os.Stat(unit); !os.IsNotExist(err) {
		t.Fatalf("--dry-run wrote %s: %v", unit, err)
	}
	code, out, errs = run(t, nil, "service", "install", "-f", script, "--unit-dir", units)
	if code != 0 || !strings.Contains(out, "systemctl enable --now starvisor-shop.service") {
		t.Fatalf("install: code %d\n%s\n%s", code, out, errs)
	}
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	bin, _ := os.Executable()
	bin, _ = filepath.EvalSymlinks(bin)
	if !strings.Contains(string(data), "ExecStart="+bin+" up -f "+script+"\n") || !strings.Contains(string(data), "WantedBy=multi-user.target") {
		t.Fatalf("unit:\n%s", data)
	}
	// Another bundle of the same folder name does not replace it unawares.
	otherScript := shopBundle(t, "b")
	code, _, errs = run(t, nil, "service", "install", "-f", otherScript, "--unit-dir", units)
	if code != ExitFailure || !strings.Contains(errs, "runs another script than "+otherScript+": give this one --name NAME") {
		t.Fatalf("install over another bundle's unit: code %d\n%s", code, errs)
	}
	if data2, _ := os.ReadFile(unit); string(data2) != string(data) {
		t.Fatalf("the refused install changed the unit:\n%s", data2)
	}
	// Nor does the other bundle remove it.
	code, _, errs = run(t, nil, "service", "uninstall", "-f", otherScript, "--unit-dir", units)
	if code != ExitFailure || !strings.Contains(errs, "runs another script than "+otherScript) {
		t.Fatalf("uninstall of another bundle's unit: code %d\n%s", code, errs)
	}
	// Enabled, it is not removed: systemctl could no longer disable it.
	wants := filepath.Join(units, "multi-user.target.wants")
	if err := os.Mkdir(wants, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(unit, filepath.Join(wants, "starvisor-shop.service")); err != nil {
		t.Fatal(err)
	}
	code, _, errs = run(t, nil, "service", "uninstall", "-f", script, "--unit-dir", units)
	if code != ExitFailure || !strings.Contains(errs, "first systemctl disable --now starvisor-shop.service") {
		t.Fatalf("uninstall while enabled: code %d\n%s", code, errs)
	}
	if err := os.Remove(filepath.Join(wants, "starvisor-shop.service")); err != nil {
		t.Fatal(err)
	}
	// Removed by its name, without evaluating the script (broken by now).
	if err := os.WriteFile(script, []byte("program(\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run(t, nil, "service", "uninstall", "-f", script, "--unit-dir", units)
	if code != 0 || !strings.Contains(out, "systemctl daemon-reload") {
		t.Fatalf("uninstall: code %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(unit); !os.IsNotExist(err) {
		t.Fatalf("uninstall left %s: %v", unit, err)
	}
	if code, _, _ = run(t, nil, "service", "uninstall", "-f", script, "--unit-dir", units); code != ExitFailure {
		t.Fatalf("second uninstall: code %d, want %d", code, ExitFailure)
	}
}

func TestExportVerb(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "shop")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(bundle, "deploy.star")
	src := `program(name = "a", command = ["/bin/sleep", "9"], ready = probe.tcp(9))` + "\n"
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, nil, "export", "--format", "systemd", "-f", script)
	if code != 0 || !strings.Contains(out, "# file: shop-a@.service\n") || !strings.Contains(out, "# file: shop.target\n") {
		t.Fatalf("code %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, `export systemd: program "a": ready: readiness probes have no systemd equivalent`) {
		t.Fatalf("stderr:\n%s", errs)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if code, out, errs = run(t, nil, "export", "--format", "nomad", "-o", dir, "-f", script); code != 0 {
		t.Fatalf("code %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "shop.nomad.json")); err != nil {
		t.Fatal(err)
	}
	if code, _, _ = run(t, nil, "export", "--format", "k8s", "-f", script); code != ExitUsage {
		t.Fatalf("unknown format: code %d, want %d", code, ExitUsage)
	}
}

// supervisord refuses to start without its log and pid folders, and a log file's
// folder: starvisor makes them, so a bundle never run has none. Exported without a
// word, the config failed at its first start.
func TestExportSaysMissingFolders(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "it's a bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(bundle, "deploy.star")
	src := `program(name = "a", command = ["/bin/sleep", "9"], stdout = log("logs dir/a.log"), stderr = log("/dev/stderr", max_bytes = 0))` + "\n"
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	q := func(d string) string { return "'" + strings.ReplaceAll(filepath.Join(bundle, d), "'", `'\''`) + "'" }
	want := "export supervisord: supervisord refuses to start without these folders, which starvisor makes itself and which do not exist here: mkdir -p " +
		q("log") + " " + q("logs dir") + " " + q("run") + "\n"
	code, _, errs := run(t, nil, "export", "--format", "supervisord", "-o", filepath.Join(t.TempDir(), "out"), "-f", script)
	if code != 0 || !strings.Contains(errs, want) {
		t.Fatalf("code %d, stderr:\n%s\nwant:\n%s", code, errs, want)
	}
	for _, d := range []string{"log", "logs dir", "run"} {
		if err := os.Mkdir(filepath.Join(bundle, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errs = run(t, nil, "export", "--format", "supervisord", "-f", script); code != 0 || strings.Contains(errs, "mkdir") {
		t.Fatalf("with the folders made: code %d, stderr:\n%s", code, errs)
	}
}

// The unit carries what the script needs from the shell it was installed from: the
// library roots given (--lib) and the variables it reads (host.env), as they are
// now. At boot, systemd's environment has neither: `up` failed ("unknown library"),
// or quietly took other settings, restarting every second.
func TestServiceUnitCarriesLibsAndEnv(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	bundle := filepath.Join(dir, "shop")
	for _, d := range []string{lib, bundle} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lib, "mk.star"), []byte("def svc(n):\n    program(name = n, command = [\"/bin/sleep\", \"9\"])\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(bundle, "deploy.star")
	src := "load(\"@team//mk.star\", \"svc\")\nsvc(\"web_\" + host.env(\"DEPLOY_ENV\", \"prod\"))\nx = host.env(\"DB_PASSWORD\", \"\")\n"
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"STARVISOR_LIBS": "team=" + lib + ":other=" + dir, "DEPLOY_ENV": "staging", "DB_PASSWORD": "hunter2"}
	code, out, errs := run(t, env, "service", "install", "--dry-run", "-f", script, "--unit-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("code %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, " up -f "+script+" --lib other="+dir+" --lib team="+lib+"\n") {
		t.Errorf("ExecStart without the library roots given (one read only by fs.glob records nothing):\n%s", out)
	}
	if !strings.Contains(out, "\nEnvironment=DEPLOY_ENV=staging\n") {
		t.Errorf("no Environment= for the variable the script reads:\n%s", out)
	}
	if !strings.Contains(errs, `the script reads DEPLOY_ENV: the unit sets it as now, DEPLOY_ENV="staging"`) {
		t.Errorf("stderr:\n%s", errs)
	}
	// A secret: its value not said, and where the unit puts it, warned of (systemctl
	// show gives Environment= to any user).
	if strings.Contains(errs, "hunter2") || !strings.Contains(errs, "warning: DB_PASSWORD is in the unit's Environment=, which systemctl show gives any user") {
		t.Errorf("stderr:\n%s", errs)
	}
}

// uninstall takes the unit's own name too (as systemctl shows it), and a dry run says
// what the run would: not installed is a failure.
func TestServiceUninstallByUnitName(t *testing.T) {
	script := shopBundle(t, "a")
	units := t.TempDir()
	if code, _, errs := run(t, nil, "service", "install", "-f", script, "--unit-dir", units, "--name", "web"); code != 0 {
		t.Fatalf("install: %d %s", code, errs)
	}
	if code, out, errs := run(t, nil, "service", "uninstall", "--unit-dir", units, "--name", "starvisor-web.service", "--dry-run"); code != 0 || !strings.Contains(out, "would remove "+filepath.Join(units, "starvisor-web.service")) {
		t.Fatalf("dry run by unit name: %d %s %s", code, out, errs)
	}
	if code, _, errs := run(t, nil, "service", "uninstall", "--unit-dir", units, "--name", "nosuch", "--dry-run"); code != ExitFailure || !strings.Contains(errs, "is not installed") {
		t.Fatalf("dry run of a unit not installed: %d %s", code, errs)
	}
	if code, _, errs := run(t, nil, "service", "uninstall", "--unit-dir", units, "--name", "starvisor-web"); code != 0 {
		t.Fatalf("uninstall: %d %s", code, errs)
	}
}

// shopBundle writes a bundle named shop, one program of the given name, and returns its
// script.
func shopBundle(t *testing.T, program string) string {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "shop")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(bundle, "deploy.star")
	if err := os.WriteFile(script, []byte(`program(name = "`+program+`", command = ["/bin/sleep", "9"])`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return script
}

// --user (the default when not root) writes a unit of the user's own systemd manager:
// wanted by default.target (a user manager has no multi-user.target), in
// $XDG_CONFIG_HOME/systemd/user, with systemctl --user and lingering for boot. A
// non-root install wrote to /etc/systemd/system and failed, or printed system commands.
func TestServiceInstallUserUnit(t *testing.T) {
	script := shopBundle(t, "a")
	config := t.TempDir()
	code, out, errs := run(t, map[string]string{"XDG_CONFIG_HOME": config}, "service", "install", "--user", "-f", script)
	if code != 0 {
		t.Fatalf("install: code %d\n%s\n%s", code, out, errs)
	}
	unit := filepath.Join(config, "systemd", "user", "starvisor-shop.service")
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "WantedBy=default.target") || strings.Contains(string(data), "network.target") {
		t.Fatalf("unit:\n%s", data)
	}
	for _, want := range []string{"wrote " + unit, "systemctl --user daemon-reload", "systemctl --user enable --now starvisor-shop.service", "loginctl enable-linger"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, " link ") {
		t.Fatalf("the user manager's own folder needs no link:\n%s", out)
	}
	code, out, errs = run(t, map[string]string{"XDG_CONFIG_HOME": config}, "service", "uninstall", "--user", "-f", script)
	if code != 0 || !strings.Contains(out, "systemctl --user daemon-reload") {
		t.Fatalf("uninstall: code %d\n%s\n%s", code, out, errs)
	}
}
