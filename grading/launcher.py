"""The grader's process launcher: standard library only, runs before any learner code.

Outside the sandbox (as the grading user) it joins a pids cgroup, starts a new
session and replaces itself with the next command under a minimal environment.
Inside the sandbox (as the sandbox user) it sets the resource limits and
replaces itself with the learner's process. Each limit it sets is inherited by
everything that process starts. Without namespaces it does both at once, and
the next command is ``setpriv`` when learner code must run as another user.

    python launcher.py [--cgroup DIR] [--setsid 1] [--chdir DIR] [--rlimits JSON]
                       [--env JSON] -- COMMAND...

Nothing secret is ever passed to it: its command line is visible to every user.
"""

import json
import os
import resource
import sys

RLIMITS = {
    "as": resource.RLIMIT_AS,
    "cpu": resource.RLIMIT_CPU,
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "core": resource.RLIMIT_CORE,
}


def main(argv):
    if "--" not in argv:
        sys.stderr.write("launcher: usage: launcher.py [options] -- COMMAND...\n")
        return 2
    split = argv.index("--")
    opts, command = argv[:split], argv[split + 1 :]
    settings = dict(zip(opts[0::2], opts[1::2], strict=False))
    cgroup = settings.get("--cgroup")
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    if settings.get("--setsid") == "1":
        try:
            os.setsid()
        except OSError:
            pass
    if settings.get("--chdir"):
        os.chdir(settings["--chdir"])
    for name, value in json.loads(settings.get("--rlimits", "{}")).items():
        value = int(value)
        try:
            resource.setrlimit(RLIMITS[name], (value, value))
        except (ValueError, OSError) as exc:
            sys.stderr.write(f"launcher: cannot set rlimit {name}={value}: {exc}\n")
            return 3
    env = None
    if "--env" in settings:
        env = json.loads(settings["--env"])
    if env is None:
        os.execvp(command[0], command)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
