package plan

import "strconv"

// appendPlan appends p's JSON form and a newline (see encode.go). p must be normalised.
func appendPlan(b []byte, p *Plan) []byte {
	b, o := open(b, 0)
	b = appendInt(o.field(b, "format"), p.Format)
	b = appendString(o.field(b, "entry"), p.Entry)
	b = appendString(o.field(b, "root"), p.Root)
	b, s := open(o.field(b, "supervisor"), 1)
	b = appendString(s.field(b, "socket"), p.Supervisor.Socket)
	b = appendString(s.field(b, "pidfile"), p.Supervisor.Pidfile)
	b = appendString(s.field(b, "log_dir"), p.Supervisor.LogDir)
	b = appendString(s.field(b, "state_dir"), p.Supervisor.StateDir)
	if p.Supervisor.MinFDs != 0 { // omitempty
		b = appendInt(s.field(b, "minfds"), p.Supervisor.MinFDs)
	}
	b = s.close(b)
	b = append(o.field(b, "programs"), '[')
	for i := range p.Programs {
		b = appendProgram(item(b, i, 1), &p.Programs[i], 2)
	}
	b = closeList(b, len(p.Programs), 1)
	b = append(o.field(b, "groups"), '[')
	for i := range p.Groups {
		b = appendGroup(item(b, i, 1), &p.Groups[i], 2)
	}
	b = closeList(b, len(p.Groups), 1)
	b, in := open(o.field(b, "inputs"), 1)
	b = appendStringMap(in.field(b, "files"), p.Inputs.Files, 2)
	b = appendStringMap(in.field(b, "env"), p.Inputs.Env, 2)
	if len(p.Inputs.Unset) > 0 { // omitempty
		b = appendStrings(in.field(b, "unset"), p.Inputs.Unset, 2)
	}
	if len(p.Inputs.Libs) > 0 { // omitempty
		b = appendStringMap(in.field(b, "libs"), p.Inputs.Libs, 2)
	}
	b = in.close(b)
	b = o.close(b)
	return append(b, '\n')
}

func appendGroup(b []byte, g *Group, depth int) []byte {
	b, o := open(b, depth)
	b = appendString(o.field(b, "name"), g.Name)
	b = appendStrings(o.field(b, "programs"), g.Programs, depth+1)
	b = appendInt(o.field(b, "priority"), g.Priority)
	if g.Pos != "" {
		b = appendString(o.field(b, "pos"), g.Pos)
	}
	return o.close(b)
}

func appendProgram(b []byte, pr *Program, depth int) []byte {
	d := depth + 1
	b, o := open(b, depth)
	b = appendString(o.field(b, "name"), pr.Name)
	b = appendString(o.field(b, "process_name"), pr.ProcessName)
	b = appendInt(o.field(b, "process_num"), pr.ProcessNum)
	b = appendString(o.field(b, "group"), pr.Group)
	b = appendStrings(o.field(b, "command"), pr.Command, d)
	b = appendString(o.field(b, "directory"), pr.Directory)
	b = appendStringMap(o.field(b, "env"), pr.Env, d)
	b = appendBool(o.field(b, "inherit_env"), pr.InheritEnv)
	b = appendString(o.field(b, "user"), pr.User)
	b = appendString(o.field(b, "umask"), pr.Umask)
	b = appendBool(o.field(b, "autostart"), pr.Autostart)
	b = appendString(o.field(b, "autorestart"), pr.Autorestart)
	b = appendInts(o.field(b, "exit_codes"), pr.ExitCodes, d)
	b = appendInt(o.field(b, "start_secs"), pr.StartSecs)
	b = appendInt(o.field(b, "start_retries"), pr.StartRetries)
	b = appendString(o.field(b, "backoff"), pr.Backoff)
	b = appendDuration(o.field(b, "backoff_max"), pr.BackoffMax)
	b = appendString(o.field(b, "stop_signal"), pr.StopSignal)
	b = appendDuration(o.field(b, "stop_timeout"), pr.StopTimeout)
	b = appendBool(o.field(b, "stop_as_group"), pr.StopAsGroup)
	b = appendBool(o.field(b, "kill_as_group"), pr.KillAsGroup)
	b = appendInt(o.field(b, "memory_max"), int(pr.MemoryMax))
	b = appendInt(o.field(b, "priority"), pr.Priority)
	b = appendInt(o.field(b, "numprocs"), pr.Numprocs)
	b = appendInt(o.field(b, "numprocs_start"), pr.NumprocsStart)
	b = appendLog(o.field(b, "stdout"), pr.Stdout, d)
	b = appendLog(o.field(b, "stderr"), pr.Stderr, d)
	b = appendBool(o.field(b, "redirect_stderr"), pr.RedirectStderr)
	b = appendStrings(o.field(b, "depends_on"), pr.DependsOn, d)
	b = appendProbe(o.field(b, "ready"), pr.Ready, d)
	if pr.Pos != "" {
		b = appendString(o.field(b, "pos"), pr.Pos)
	}
	b = appendString(o.field(b, "hash"), pr.Hash)
	return o.close(b)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

func appendLog(b []byte, l *Log, depth int) []byte {
	if l == nil {
		return append(b, "null"...)
	}
	b, o := open(b, depth)
	b = appendString(o.field(b, "path"), l.Path)
	b = strconv.AppendInt(o.field(b, "max_bytes"), l.MaxBytes, 10)
	b = appendInt(o.field(b, "backups"), l.Backups)
	b = appendBool(o.field(b, "timestamps"), l.Timestamps)
	return o.close(b)
}

func appendProbe(b []byte, r *Probe, depth int) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b, o := open(b, depth)
	b = appendString(o.field(b, "kind"), r.Kind)
	if r.Host != "" {
		b = appendString(o.field(b, "host"), r.Host)
	}
	if r.Port != 0 {
		b = appendInt(o.field(b, "port"), r.Port)
	}
	if r.URL != "" {
		b = appendString(o.field(b, "url"), r.URL)
	}
	if r.Status != 0 {
		b = appendInt(o.field(b, "status"), r.Status)
	}
	if len(r.Command) > 0 {
		b = appendStrings(o.field(b, "command"), r.Command, depth+1)
	}
	if r.Pattern != "" {
		b = appendString(o.field(b, "pattern"), r.Pattern)
	}
	b = appendDuration(o.field(b, "interval"), r.Interval)
	b = appendDuration(o.field(b, "timeout"), r.Timeout)
	return o.close(b)
}
