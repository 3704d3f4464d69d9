package engine

import (
	"fmt"
	"strconv"
	"time"
)

// describe words a process's state as supervisorctl's status column does
// (rpcinterface._interpretProcessInfo).
func describe(name string, sn *snapshot, now time.Time) string {
	switch sn.State {
	case Running:
		// Built by hand: Status words every process on each call, so keep it to one allocation.
		b := make([]byte, 0, 40)
		b = append(b, "pid "...)
		b = strconv.AppendInt(b, int64(sn.Pid), 10)
		b = append(b, ", uptime "...)
		return string(appendUptime(b, now.Sub(sn.Started)))
	case Stopped, Exited:
		if sn.Stopped.IsZero() {
			if sn.State == Stopped {
				return "Not started"
			}
			return ""
		}
		if sn.LeftKilled {
			// The trap of a server that daemonizes (nginx, redis): it forks, exits 0, and
			// its daemon dies with it; only the daemon's log said so.
			return stopTime(sn.Stopped) + "; what it left running was killed with it (a program that forks a daemon wants its foreground mode)"
		}
		return stopTime(sn.Stopped)
	case Backoff, Fatal:
		if sn.Err == "" {
			return fmt.Sprintf("unknown error (try \"tail %s\")", name)
		}
		return sn.Err
	}
	return ""
}

// uptime formats d like Python's timedelta: "0:01:02", "1 day, 2:03:04", "3 days, 0:00:05".
func uptime(d time.Duration) string { return string(appendUptime(nil, d)) }

func appendUptime(b []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	secs := int64(d / time.Second)
	days, secs := secs/86400, secs%86400
	if days > 0 {
		b = strconv.AppendInt(b, days, 10)
		if days == 1 {
			b = append(b, " day, "...)
		} else {
			b = append(b, " days, "...)
		}
	}
	b = strconv.AppendInt(b, secs/3600, 10)
	b = append(b, ':', byte('0'+secs%3600/60/10), byte('0'+secs%3600/60%10))
	return append(b, ':', byte('0'+secs%60/10), byte('0'+secs%60%10))
}

// stopTime formats t as supervisord's "%b %d %I:%M %p" in local time: "Nov 25 04:42 PM".
func stopTime(t time.Time) string { return t.Local().Format("Jan 02 03:04 PM") }
