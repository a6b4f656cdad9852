"""Fixtures of the Python tests (tests/python/): a real skiffd per test file.

Run through scripts/run-tests.sh (tests/python/run.sh), which sets SKIFF_BUILD, SKIFF_SRC, HOME
and TMPDIR per test file; runnable by hand too:

    SKIFF_BUILD=$PWD/build SKIFF_SRC=$PWD /usr/bin/python3 -m pytest tests/python/test_client.py

The `server` fixture starts skiffd on free loopback ports with its own data directory and HOME
(skiffd writes ~/.skiff.toml there, which the client and the CLI read), and stops it after the
file's tests; `deploy(path)` deploys an app with the CLI.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import pytest

BUILD = os.path.abspath(os.environ.get("SKIFF_BUILD", "build"))
SRC = os.path.abspath(os.environ.get("SKIFF_SRC", "."))
sys.path.insert(0, os.path.join(BUILD, "lib", "python3", "dist-packages"))


def free_port():
    """A port no socket holds, below the ephemeral range (as scripts/ports.sh)."""
    import random
    for _ in range(200):
        p = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise RuntimeError("no free port")


class Server:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="pytest-skiff.")
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.log_path = os.path.join(self.tmp, "skiffd.log")
        self.proc = None

    def start(self, *args):
        for _ in range(5):
            self.port, self.http_port = free_port(), free_port()
            env = dict(os.environ, HOME=self.home, SKIFF_SERVER="", SKIFF_DATA="")
            log = open(self.log_path, "a")
            self.proc = subprocess.Popen(
                [os.path.join(BUILD, "bin", "skiffd"), "--data", os.path.join(self.tmp, "data"),
                 "--listen", f"127.0.0.1:{self.port}", "--http", f"127.0.0.1:{self.http_port}",
                 *args], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
            deadline = time.time() + 15
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                if os.path.exists(os.path.join(self.home, ".skiff.toml")) and self._open():
                    os.environ["HOME"] = self.home
                    os.environ["SKIFF_SERVER"] = f"127.0.0.1:{self.port}"
                    return
                time.sleep(0.02)
            if self.proc.poll() is None:
                raise RuntimeError("skiffd did not start:\n" + self.log())
        raise RuntimeError("skiffd exited during start-up:\n" + self.log())

    def _open(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def log(self, lines=40):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def skiff(self, *args, check=True, timeout=120, input=None):
        """Runs the CLI; returns the CompletedProcess (text)."""
        r = subprocess.run([os.path.join(BUILD, "bin", "skiff"), *args], capture_output=True,
                           text=True, timeout=timeout, input=input,
                           env=dict(os.environ, HOME=self.home,
                                    SKIFF_SERVER=f"127.0.0.1:{self.port}"))
        if check and r.returncode != 0:
            raise AssertionError(f"skiff {' '.join(args)} exited {r.returncode}:\n{r.stdout}"
                                 f"\n{r.stderr}\n--- skiffd log ---\n{self.log()}")
        return r

    def deploy(self, path):
        if not os.path.isabs(path):
            path = os.path.join(SRC, path)
        return self.skiff("deploy", path)


def run_apps(server, prefix):
    """The apps listed with names starting with prefix (`skiff run` names them NAME-run-...)."""
    return [a for a in json.loads(server.skiff("app", "list").stdout)
            if a["name"].startswith(prefix)]


def gone(server, prefix, timeout=20):
    """True once no app named prefix... is listed: `skiff run` apps are ephemeral, removed by
    the server as the run's deploying connection closes."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not run_apps(server, prefix):
            return True
        time.sleep(0.1)
    return False


def _forget_client():
    """The package's process-wide connection is to the previous file's server: drop it."""
    import skiff._client
    skiff._client.set_client(None)


@pytest.fixture(scope="module")
def server():
    s = Server()
    s.start()
    _forget_client()
    yield s
    s.stop()
    _forget_client()
