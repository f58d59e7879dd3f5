"""The `none` backend: the job runs as the worker, with the worker's rights, in a process
group of its own and with the job's rlimits — and nothing else between it and the service.
Only an operator's explicit LEDGERFLOW_SANDBOX=none selects it (one trusted team on a host
without user namespaces), and every use is logged as a warning. The tests use it to show that
each escape they try really works where there is no sandbox.

Paths a spec names inside the sandbox (WORKSPACE, mount targets) are rewritten to the host
paths they stand for; tracking is reached directly, with the token in the environment.
"""

import contextlib
import dataclasses
import logging
import os
import re
import signal
import subprocess
import sys

from config.sandbox.common import LAUNCHER_SOURCE, ChildProcess, job_env, launcher_argv
from config.sandbox.spec import WORKSPACE, Backend, Network, Spec

logger = logging.getLogger(__name__)


def _translator(spec: Spec):
    pairs = [(WORKSPACE, str(spec.workspace)),
             *[(m.target, str(m.source)) for m in (*spec.mounts, *spec.writable_mounts)]]
    pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(inside)}(?=/|\b|$)"
                                  for inside, _ in pairs))
    table = dict(pairs)
    return lambda text: pattern.sub(lambda m: table[m.group(0)], text)


class UnconfinedProcess(ChildProcess):
    def _end_tree(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def _measured(self, code, usage, limit):
        self._end_tree()  # whatever the job left in its process group
        return usage, limit


class UnconfinedBackend(Backend):
    name = "none"

    def start(self, spec: Spec, sockets=None) -> UnconfinedProcess:
        logger.warning("SANDBOX DISABLED (LEDGERFLOW_SANDBOX=none): job %s runs with the "
                       "worker's own rights and can read and change everything it can.",
                       spec.name)
        translate = _translator(spec)
        env = {k: translate(v) for k, v in job_env(spec).items()}
        if spec.relay is not None:  # no private loopback here: tracking directly
            env.update({"MLFLOW_TRACKING_URI": spec.relay.upstream,
                        "MLFLOW_TRACKING_TOKEN": spec.relay.token})
        if spec.network == Network.EGRESS:
            for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
                env.pop(key, None)
        (spec.workspace / "home").mkdir(exist_ok=True)
        # no loopback forwards here: the same launcher, on host paths, with no network of its own
        host = dataclasses.replace(spec, argv=[translate(a) for a in spec.argv],
                                   cwd=translate(spec.cwd), network=Network.NONE)
        argv = launcher_argv(host, python=sys.executable, launcher=str(LAUNCHER_SOURCE))
        with open(spec.stdout, "ab") as out, open(spec.stderr, "ab") as err:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,  # noqa: S603
                                     stderr=err, env=env, start_new_session=True)
        return UnconfinedProcess(popen, spec)
