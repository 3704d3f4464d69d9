package logs

import (
	"errors"
	"io"

	"github.com/starvisor/starvisor/engine/plan"
)

// Opener opens rotating log files; it is the engine's LogOpener (engine.LogOpener).
// This package does not import engine, so the engine may import it.
type Opener struct {
	// Trust: users, besides root and the daemon's own, whose symlinks on the way to a
	// log file are followed (the bundle's owner); see safeopen.go.
	Trust []uint32
	// Moved, when set, gives where a log path is now, should its bundle's folder have
	// moved (mv) since its plan was made: a file first opened after the move is made
	// there, not in the old folder made again.
	Moved func(path string) string
	// Owners, when set, gives the users a log's own file may belong to besides root and
	// the daemon's: the user its program runs as, whose own output it holds (a logrotate
	// create 0640 app app, in app's folder). Another's file there is not written.
	Owners func(path string) []uint32
}

// Open returns a *File for l. The file and its folders are created on the first
// byte written, so an open failure shows in File.Err, not here.
func (o Opener) Open(l *plan.Log) (io.WriteCloser, error) {
	if l == nil {
		return nil, errors.New("logs.Open: no log spec")
	}
	f, err := Open(*l)
	if err != nil {
		return nil, err
	}
	f.trust, f.moved = o.Trust, o.Moved
	if o.Owners != nil {
		f.owners = o.Owners(l.Path)
	}
	return f, nil
}
