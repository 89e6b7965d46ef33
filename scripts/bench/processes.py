"""Child processes of the peer benchmark: started with a log file each, watched, stopped by their own id.

Children inherit the bench's niceness and environment (plus what the caller
adds). Stopping sends SIGTERM to each child the bench started, waits, then
SIGKILL to that child only: nothing is ever looked up or killed by name.
"""

import os
import pathlib
import signal
import subprocess
import time


class Child:
    def __init__(self, name, argv, log_dir, env=None, cwd=None):
        self.name = name
        self.log_path = pathlib.Path(log_dir) / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started = time.time()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=full_env, cwd=cwd,
            )

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process.poll() is None

    def check(self):
        """Raises if the child has exited, with the end of its log."""
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with status {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, chars=3000):
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def peak_rss_mb(self):
        """This child's peak resident memory (VmHWM), in MB; None once it has exited."""
        return peak_rss_mb(self.pid)

    def children_peak_rss_mb(self):
        """The same for each of this child's own children (a prefork pool's processes)."""
        return [peak_rss_mb(pid) for pid in children_of(self.pid)]

    def stop(self, timeout=15.0):
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def peak_rss_mb(pid):
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


def children_of(pid):
    try:
        text = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def stop_all(children):
    """SIGTERM to every child first, so they wind down together, then wait for each."""
    for child in children:
        if child.alive():
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        child.stop()
