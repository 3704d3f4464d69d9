# Prints, as JSON, the processes supervisord's own parser reads from a config file:
# one object per process with the fields conformance/supervisord compares.
# Usage: python3 dump.py a.conf b.conf ...  ->  {"a.conf": [process, ...], ...}
import json
import os
import shlex
import signal
import sys

from supervisor.datatypes import Automatic, RestartUnconditionally, RestartWhenExitUnexpected
from supervisor.options import ServerOptions

def logname(v):
    if v is Automatic:
        return "AUTO"
    return v


def processes(path):
    o = ServerOptions()
    o.configfile = path
    o.here = os.path.dirname(path)
    o.process_config(do_usage=False)
    out = []
    for g in o.process_group_configs:
        for p in g.process_configs:
            env = dict(p.environment or {})  # read_config merged [supervisord] environment= in
            out.append({
                "group": g.name,
                "group_priority": g.priority,
                "name": p.name,
                "command": shlex.split(p.command),
                "directory": p.directory,
                "env": env,
                "uid": p.uid,
                "umask": p.umask,
                "autostart": p.autostart,
                "autorestart": {RestartUnconditionally: "true", RestartWhenExitUnexpected: "unexpected", False: "false"}[p.autorestart],
                "exitcodes": p.exitcodes,
                "startsecs": p.startsecs,
                "startretries": p.startretries,
                "stopsignal": signal.Signals(p.stopsignal).name[3:],
                "stopwaitsecs": p.stopwaitsecs,
                "stopasgroup": p.stopasgroup,
                "killasgroup": p.killasgroup,
                "priority": p.priority,
                "redirect_stderr": p.redirect_stderr,
                "stdout_logfile": logname(p.stdout_logfile),
                "stdout_logfile_maxbytes": p.stdout_logfile_maxbytes,
                "stdout_logfile_backups": p.stdout_logfile_backups,
                "stderr_logfile": logname(p.stderr_logfile),
                "stderr_logfile_maxbytes": p.stderr_logfile_maxbytes,
                "stderr_logfile_backups": p.stderr_logfile_backups,
            })
    return out


json.dump({path: processes(os.path.abspath(path)) for path in sys.argv[1:]}, sys.stdout, indent=1)
