package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Unsearchable is the first folder of dir's path, from the root down, that uid (with
// gids) may not search, by the mode bits; "" when it may reach dir, or a folder on the
// way is missing (the spawn says that itself). A process run as another user fails its
// chdir, or its exec, with EACCES there.
func Unsearchable(dir string, uid int, gids map[int]bool) string {
	path := "/"
	for _, part := range strings.Split(filepath.Clean(dir), "/") {
		path = filepath.Join(path, part)
		st, err := os.Stat(path)
		if err != nil {
			return ""
		}
		if !Permits(st, uid, gids, 1) {
			return path
		}
	}
	return ""
}

// Permits says whether uid (with gids) has the permission bit (1 x, 2 w, 4 r) on the
// file st describes, by its mode bits.
func Permits(st os.FileInfo, uid int, gids map[int]bool, bit os.FileMode) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || uid == 0 {
		return true
	}
	mode := st.Mode().Perm()
	switch {
	case int(sys.Uid) == uid:
		return mode&(bit<<6) != 0
	case gids[int(sys.Gid)]:
		return mode&(bit<<3) != 0
	}
	return mode&bit != 0
}

// deniedWhy names what a process run with cred could not reach when its spawn failed
// with EACCES, which does not tell its chdir from its exec: "couldn't chdir to DIR:
// EACCES (user U may not enter F)", or "" when the mode bits show neither.
func deniedWhy(cred *syscall.Credential, user, dir, path string) string {
	if cred == nil {
		return ""
	}
	uid := int(cred.Uid)
	gids := map[int]bool{int(cred.Gid): true}
	for _, g := range cred.Groups {
		gids[int(g)] = true
	}
	if dir != "" {
		if f := Unsearchable(dir, uid, gids); f != "" {
			return "couldn't chdir to " + dir + ": EACCES (user " + user + " may not enter " + f + ")"
		}
	}
	if f := Unsearchable(filepath.Dir(path), uid, gids); f != "" {
		return "couldn't exec " + path + ": EACCES (user " + user + " may not enter " + f + ")"
	}
	if st, err := os.Stat(path); err == nil && !Permits(st, uid, gids, 1) {
		return "couldn't exec " + path + ": EACCES (user " + user + " may not run it)"
	}
	return ""
}
