"""Runs ``xferdiag`` commands for the documented-commands test without paying torch's import each time.

``python -m xferdiag`` spends 5 to 10 CPU seconds importing torch, torchvision and scikit-learn before a short
command starts. This server imports them once, then for every request forks a child that runs the package's
``__main__`` exactly as ``python -m xferdiag`` does (as tests/cli_helpers.py's driver does), with the caller's
argv, working directory, environment and standard streams, and answers with its exit status. The ``xferdiag``
on the test's PATH is a tiny client (:func:`client_script`) that passes its streams over a Unix socket.

Run as ``python tests/docs_server.py SOCKET``; it prints ``ready`` once it listens.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import sys
import traceback


def client_script(python: str, address: str) -> str:
    """The ``xferdiag`` executable: hand argv, cwd, environment and fds 0-2 to the server; exit with its status."""
    return f"""#!{python} -S
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect({address!r})
socket.send_fds(s, [b"x"], [0, 1, 2])
s.sendall(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode())
s.shutdown(socket.SHUT_WR)
sys.exit(int(s.recv(16) or b"1"))
"""


def _run_command(request: dict, fds: list[int]) -> None:
    """In the forked child: become the command, run it, exit with its status (never returns)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["xferdiag", *request["argv"]]
    code = 0
    try:
        runpy.run_module("xferdiag", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    _, fds, _, _ = socket.recv_fds(connection, 1, 3)
    chunks = []
    while chunk := connection.recv(1 << 16):
        chunks.append(chunk)
    return json.loads(b"".join(chunks)), fds


def serve(address: str) -> None:
    from xferdiag.cli import calm_waiting_threads

    calm_waiting_threads()  # before torch loads, as the command does
    import xferdiag.api  # noqa: F401  (the slow imports, once)
    import xferdiag.commands.analyze  # noqa: F401
    import xferdiag.commands.explain  # noqa: F401
    import xferdiag.commands.finetune  # noqa: F401

    running: list[int] = []

    def stop(*_) -> None:
        """Terminated (the test is over, or a command ran past its timeout): the running command ends too."""
        for pid in running:
            os.kill(pid, signal.SIGKILL)
        os._exit(1)

    signal.signal(signal.SIGTERM, stop)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(address)
    server.listen()
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        request, fds = _receive(connection)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            server.close()
            connection.close()
            _run_command(request, fds)
        running.append(pid)
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        running.remove(pid)
        connection.sendall(str(os.waitstatus_to_exitcode(status)).encode())
        connection.close()


if __name__ == "__main__":
    serve(sys.argv[1])
