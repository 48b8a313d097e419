"""Running the real command line from tests: one process per command, cheaply.

``python -m xferdiag`` spends most of a short run importing torch, torchvision and scikit-learn
(5 to 10 CPU seconds each time). :func:`run_cli_batch` imports them once in a driver process
and forks a fresh child per command, which then runs the ``xferdiag`` package's ``__main__``
exactly as ``python -m xferdiag`` does: its own process, argv, working directory, stdout,
stderr and exit status (an uncaught exception prints its traceback and exits 1, as Python does).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

DRIVER = r"""
import json, os, runpy, sys, traceback

# the slow imports, once
import xferdiag.cli, xferdiag.api, xferdiag.commands.finetune, xferdiag.commands.analyze, xferdiag.commands.explain

jobs, workers = json.load(sys.stdin)


def child(job):
    os.chdir(job["cwd"])
    os.environ.update(job["env"])
    for fd, name in ((1, "stdout"), (2, "stderr")):
        target = os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["xferdiag", *job["argv"]]
    code = 0
    try:
        runpy.run_module("xferdiag", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


codes, running, queue = {}, {}, list(enumerate(jobs))
while queue or running:
    while queue and len(running) < workers:
        index, job = queue.pop(0)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                child(job)
            finally:
                os._exit(1)
        running[pid] = index
        with open(job["pidfile"] + ".tmp", "w") as fh:
            fh.write(str(pid))
        os.replace(job["pidfile"] + ".tmp", job["pidfile"])
    pid, status = os.wait()
    codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
print(json.dumps([codes[i] for i in range(len(jobs))]))
"""


def xferdiag(*args, cwd, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m xferdiag ARGS`` in a brand-new interpreter."""
    return subprocess.run([sys.executable, "-m", "xferdiag", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**ENV, "TORCH_HOME": str(cwd), **(env or {})}, timeout=timeout)


class CliBatch:
    """Start ``(argv, cwd)`` jobs as ``xferdiag`` processes forked from one pre-imported driver.

    :meth:`pid` gives a job's process id once it runs (to kill it); :meth:`results` waits for all.
    """

    def __init__(self, jobs: list[tuple[list, Path]], workers: int = 2):
        self._scratch = tempfile.TemporaryDirectory(prefix="xferdiag-cli-")
        scratch = self._scratch.name
        self.payload = [{"argv": [str(a) for a in argv], "cwd": str(cwd), "env": {"TORCH_HOME": str(cwd)},
                         "stdout": f"{scratch}/{i}.out", "stderr": f"{scratch}/{i}.err", "pidfile": f"{scratch}/{i}.pid"}
                        for i, (argv, cwd) in enumerate(jobs)]
        self.driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, env=ENV, cwd=str(Path(__file__).resolve().parents[1]))
        self.driver.stdin.write(json.dumps([self.payload, workers]))
        self.driver.stdin.close()
        self.driver.stdin = None  # so communicate() only reads

    def pid(self, index: int, timeout: float = 300.0) -> int:
        path = Path(self.payload[index]["pidfile"])
        deadline = time.monotonic() + timeout
        while not path.is_file():
            if self.driver.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"job {index} never started: {self.driver.stderr.read()}")
            time.sleep(0.002)
        return int(path.read_text())

    def results(self, timeout: float = 600.0) -> list[subprocess.CompletedProcess]:
        try:
            out, err = self.driver.communicate(timeout=timeout)
            assert self.driver.returncode == 0, err
            codes = json.loads(out.strip().splitlines()[-1])
            return [subprocess.CompletedProcess(job["argv"], code, Path(job["stdout"]).read_text(), Path(job["stderr"]).read_text())
                    for job, code in zip(self.payload, codes)]
        finally:
            self.driver.kill()
            self._scratch.cleanup()


def run_cli_batch(jobs: list[tuple[list, Path]], workers: int = 2, timeout: float = 600.0) -> list[subprocess.CompletedProcess]:
    """Run each ``(argv, cwd)`` as its own ``xferdiag`` process and wait for all of them."""
    return CliBatch(jobs, workers).results(timeout)


def tree_state(root: Path) -> dict[str, str]:
    """Every path under ``root``: folders as 'dir', files as their sha256."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*"))}


def one_line_error(result: subprocess.CompletedProcess, needle: str) -> str | None:
    """None when ``result`` is a clean user error mentioning ``needle``; else what is wrong with it."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.returncode != 2:
        return f"exit code {result.returncode}, not 2"
    if "Traceback" in result.stderr or len(lines) != 1:
        return f"{len(lines)} lines on stderr, not one"
    if not lines[0].startswith("xferdiag") or needle not in lines[0]:
        return f"the message does not mention {needle!r}"
    return None
