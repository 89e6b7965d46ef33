"""A private redis-server for one benchmark run: a unix socket in a temporary directory, no TCP port, no persistence.

Both systems get a fresh one for every run, so no run sees another's keys,
consumer groups or memory. Never touches a Redis on 6379 or anywhere else.
"""

import pathlib
import shutil
import subprocess
import tempfile
import time

import redis


class RedisServer:
    def __init__(self, binary="redis-server"):
        self.binary = shutil.which(binary)
        if self.binary is None:
            raise RuntimeError(f"{binary} not found on PATH (scripts/lib/system-packages redis-server)")
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="bench-peer-redis-"))
        self.socket = self.dir / "redis.sock"
        self.process = None

    def start(self, timeout=10.0):
        log = open(self.dir / "redis.log", "wb")
        self.process = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start: {(self.dir / 'redis.log').read_text()[-2000:]}")
            if self.socket.exists():
                try:
                    if self.client().ping():
                        return self
                except redis.ConnectionError:
                    pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on {self.socket} within {timeout} s")

    def client(self):
        return redis.Redis(unix_socket_path=str(self.socket))

    @property
    def url(self):
        """The URL verdict's processes take."""
        return f"unix://{self.socket}"

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

