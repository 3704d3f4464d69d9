package builtins

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file the sandbox accepted is read beneath its root: a symlink another user swaps in
// between the check and the open (a folder of a root bundle they may write) cannot lead
// out of it. One run in fifteen read /etc/shadow into a plan.
func TestReadSandboxedStaysBeneathTheRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(filepath.Join(root, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	for path, text := range map[string]string{secret: "root:x:0:0\n", filepath.Join(root, "shared", "a.env"): "A=1\n", filepath.Join(root, "deploy.star"): ""} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, _, err := newState(Options{File: filepath.Join(root, "deploy.star")})
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(root, "shared", "a.env")
	key, err := s.sandbox(abs) // the check
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.readSandboxed(abs, key, 100); err != nil || string(b) != "A=1\n" {
		t.Fatalf("read %q, %v", b, err)
	}
	// Swapped after the check: the folder on the way, then the file itself.
	if err := os.Rename(filepath.Join(root, "shared"), filepath.Join(root, "was")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(root, "shared")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(secret, filepath.Join(dir, "a.env")); err != nil {
		t.Fatal(err)
	}
	b, err := s.readSandboxed(abs, key, 100)
	if err == nil || strings.Contains(string(b), "root:") {
		t.Fatalf("read %q through a link out of the bundle (err %v)", b, err)
	}
	if !strings.Contains(err.Error(), "leads outside the bundle root") {
		t.Errorf("error %v", err)
	}
}

// A loaded file is opened beneath its root too: the check resolved its path, a symlink
// swapped in since would lead a root evaluation to a root-only .star outside (it ran one,
// its secret in a program's env, twice in 500 runs).
func TestLoadReadsBeneathTheRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(filepath.Join(root, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, text := range map[string]string{filepath.Join(root, "lib", "x.star"): "X = 1\n", filepath.Join(dir, "x.star"): "X = \"secret\"\n", filepath.Join(root, "deploy.star"): ""} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, _, err := newState(Options{File: filepath.Join(root, "deploy.star")})
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(s.realRoot, "lib", "x.star") // as inRoot resolved it
	if b, err := s.readUnderRoots(real, 100); err != nil || string(b) != "X = 1\n" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := os.Rename(filepath.Join(root, "lib"), filepath.Join(root, "was")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.readUnderRoots(real, 100); err == nil || strings.Contains(string(b), "secret") {
		t.Fatalf("read %q through a link out of the bundle (err %v)", b, err)
	}
}
