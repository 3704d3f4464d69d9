// Package builtins is the Starlark side of starvisor: it evaluates a deploy script, with
// the files it loads, into a plan.Plan. Evaluation is pure (no processes, no writes, no
// network), reads files only through fs.* and load() under the bundle root and library
// roots, and is bounded by a step limit and a wall-clock timeout.
//
// # API at a glance
//
//	Eval(ctx, Options) (*plan.Plan, error)        run the entry script; the plan is Finish()ed
//	ParseLibs(flags, envValue) (map[string]string, error)  "--lib NAME=DIR" and STARVISOR_LIBS
//	type Options { File, Libs, Modules, MaxSteps, Timeout, LookupEnv, Print }
//	type Error { Pos, Msg, Stack }                 an evaluation error: "file:line:col: msg" + stack
//	type Module { Name(); Members() }              contributes predeclared names
//	type Validator { Validate(*plan.Plan) error }  optional: checks the finished plan
//	type Stater { NewState(*starlark.Thread) }     optional: per-evaluation state on the thread
//	Default() []Module; Predeclared(mods...) (starlark.StringDict, error)
//	MaxReadBytes, DefaultMaxSteps, DefaultTimeout, DefaultProbeInterval, DefaultProbeTimeout
//
// # Predeclared names (Default modules; see DESIGN.md "The script")
//
//	program(name, command, directory, env, inherit_env, user, umask, autostart, autorestart,
//	        exit_codes, start_secs, start_retries, stop_signal, stop_timeout, stop_as_group,
//	        kill_as_group, priority, numprocs, numprocs_start, process_name, stdout, stderr,
//	        redirect_stderr, depends_on, ready, group, backoff, backoff_max)
//	                                  -> struct(name, process_names, numprocs, group, priority)
//	group(name, programs = [], priority = 999)       supervisor(socket, pidfile, log_dir, state_dir)
//	log(path, max_bytes = "50MB", backups = 10, timestamps = False)
//	here(rel = "")  root(rel = "")  path.join/abs/base/dir/rel/list
//	host.name()  host.os()  host.arch()  host.cpus()  host.env(name, default = None)
//	fs.exists  fs.is_dir  fs.glob  fs.read  fs.read_env
//	probe.tcp(port, host)  probe.http(url, status)  probe.exec(command)  probe.log(pattern)  probe.exited()
//	                                  each with interval = "1s", timeout = "60s"
//	version.parse(s)  version.latest(paths_or_names, pattern = None)
//	struct  json  fail  print
//
// # Semantics worth knowing
//
// Relative paths. A relative path given to any builtin (here, path.abs, path.list,
// path.rel, log, program's command[0] when it holds a slash, directory, supervisor,
// probe.exec, fs.*) resolves against the folder of the calling file: the nearest
// Starlark frame on the stack whose file is not in @stdlib. Stdlib files are transparent:
// python.venv("venv") called from etc/deploy.star means etc/venv, because python.star's
// own call to path.abs skips its frame. Files of a library root (@NAME//...) are not
// transparent: here() in them is their own folder, so a library can ship files. The
// plan holds only absolute, cleaned paths; root() is the entry script's folder.
//
// Loading. "@stdlib//x.star" is embedded (package stdlib); "@NAME//x.star" is under
// Options.Libs[NAME]; "//x.star" is the root of the loading file's own repository (the
// bundle, the library, or stdlib); "x.star" and "./x.star" are relative to the loading
// file. A name may not climb out of its repository, and a symlink may not lead out of
// it. Each file is evaluated once per Eval and frozen; a cycle is reported as
// "load cycle: a.star -> b.star -> a.star". All files run on one thread, so the step
// limit and timeout cover everything and an error's stack crosses files.
//
// Sandbox. fs.* accept any path that, symlinks resolved, lies under the bundle root or a
// library root; fs.glob leaves out matches that do not. fs.read and fs.read_env read at
// most MaxReadBytes. Every file read (scripts and fs reads) is recorded in
// plan.Inputs.Files as "sha256:<hex>", keyed by path relative to the root, "@NAME//path"
// or "@stdlib//path". host.* are functions so that each read is recorded in
// plan.Inputs.Env: "host.name", "host.os", "host.arch", "host.cpus", and each variable
// read by host.env under its own name ("" when unset).
//
// Programs. command is a list, or a string split like a POSIX shell (quotes and
// backslashes, no expansion). numprocs expands in program(): one plan.Program per
// process, ProcessName from the process_name template ({name}, {num}, {num:02}),
// STARVISOR_PROCESS_NUM in each process's env (for every program, "0" with numprocs = 1),
// and a numprocs > 1 program with no group is the group of its own name. A log path may
// use {name}, {num} and {process_name}; with numprocs > 1 it must use {num} or
// {process_name}. Without stdout, a process logs to <log_dir>/<process_name>.log; without
// stderr (and without redirect_stderr) to <log_dir>/<process_name>.err.log, log_dir being
// the final supervisor(log_dir) even when supervisor() comes later. None discards a
// stream. Each program records Pos, "file:line:col" of the program() call (the call's
// opening parenthesis). Cross-program checks (unknown or cyclic depends_on, duplicate
// process names, group membership) are plan.Finish's; its error is returned as is.
//
// Errors. Messages name the function and parameter and say what was got and wanted:
// "program: start_retries: got -2, want >= -1". Eval's error (an *Error) reads
// "file:line:col: message" and then the Starlark stack, outermost call first, file names
// relative to the bundle root; recursion is folded.
package builtins
