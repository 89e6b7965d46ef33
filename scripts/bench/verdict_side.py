"""verdict's side of the peer benchmark: one verdict-api and N verdict-worker processes on a private Redis, driven over HTTP.

The processes are the release binaries (target/release), started as
`fleet up` starts them but without its watchdog: the api with no queue limit
(`--max-queue-depth 0`, so a whole mix can be queued before any worker runs),
each worker on one core's worth of threads (`--threads 1`, the default) with
the default pack. Jobs are submitted as a client would: `POST /v1/jobs`,
multipart, from a pool of threads with a keep-alive connection each; results
are read with `GET /v1/jobs/{id}?wait=60`.
"""

import concurrent.futures
import datetime
import http.client
import json
import socket
import threading
import time
import uuid

from jobs import Outcome
from processes import Child, stop_all


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def epoch(rfc3339):
    return datetime.datetime.fromisoformat(rfc3339).timestamp()


def multipart(job):
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{job.filename}"\r\n'
        f"Content-Type: {job.content_type}\r\n\r\n"
    ).encode()
    texts = b"".join(
        f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'.encode() + t.encode() for t in job.texts
    )
    return f"multipart/form-data; boundary={boundary}", head + job.data + texts + f"\r\n--{boundary}--\r\n".encode()


def describe(workers, batch_size, pack):
    """verdict's configuration, in a sentence for the report."""
    return (
        f"`verdict-api` (`--max-queue-depth 0`, otherwise defaults) and {workers} `verdict-worker run` "
        f"processes (`--threads 1`, `--batch-size {batch_size}`, `--model {pack.name}`), release build "
        "(target/release), Redis over a unix socket, logs at INFO (JSON) into files; jobs sent as multipart "
        "`POST /v1/jobs`, results read with `GET /v1/jobs/{id}?wait=60`"
    )


class VerdictSystem:
    name = "verdict"

    def __init__(self, root, redis_server, workers, log_dir, pack, batch_size=1):
        self.root = root
        self.redis = redis_server
        self.workers = workers
        self.log_dir = log_dir
        self.pack = pack
        self.batch_size = batch_size
        self.api = None
        self.worker_children = []
        self.port = None
        self.local = threading.local()

    # -- processes -----------------------------------------------------------

    def start_service(self, timeout=20.0):
        self.port = free_port()
        self.api = Child(
            "verdict-api",
            [self.root / "target/release/verdict-api", "--redis", self.redis.url, "--bind", f"127.0.0.1:{self.port}",
             "--max-queue-depth", "0", "--log-format", "json"],
            self.log_dir,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.api.check()
            try:
                status, _ = self.request("GET", "/healthz")
                if status == 200:
                    return
            except OSError:
                self.local.__dict__.clear()
            time.sleep(0.05)
        raise RuntimeError(f"verdict-api did not answer /healthz within {timeout} s:\n{self.api.log_tail()}")

    def start_workers(self):
        for i in range(self.workers):
            self.worker_children.append(Child(
                f"verdict-worker-{i}",
                [self.root / "target/release/verdict-worker", "run", "--redis", self.redis.url, "--model", self.pack,
                 "--name", f"bench-{i}", "--batch-size", str(self.batch_size), "--log-format", "json"],
                self.log_dir,
            ))

    def wait_workers_ready(self, timeout=60.0):
        """Until /readyz lists every worker (a worker registers once its model is loaded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self.worker_children:
                child.check()
            status, body = self.request("GET", "/readyz")
            if status == 200 and len(json.loads(body).get("workers", [])) >= self.workers:
                return
            time.sleep(0.05)
        raise RuntimeError(f"verdict workers not ready within {timeout} s")

    def peak_rss_mb(self):
        return [c.peak_rss_mb() for c in self.worker_children]

    def stop(self):
        stop_all(self.worker_children + ([self.api] if self.api else []))

    # -- HTTP ----------------------------------------------------------------

    def connection(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return conn

    def request(self, method, path, body=None, headers=None):
        """One request on this thread's keep-alive connection, reconnecting once if the api closed it."""
        for attempt in (0, 1):
            conn = self.connection()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise

    def submit_one(self, job):
        content_type, body = multipart(job)
        status, answer = self.request("POST", "/v1/jobs", body, {"Content-Type": content_type})
        if status != 202:
            raise RuntimeError(f"verdict-api refused {job.filename}: {status} {answer[:500]!r}")
        return json.loads(answer)["id"]

    def submit(self, jobs, concurrency):
        """Submits every job; returns (ids in job order, epoch of the first submission)."""
        first = time.time()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            ids = list(pool.map(self.submit_one, jobs))
        return ids, first

    def wait_one(self, job_id, deadline):
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError(f"verdict job {job_id} did not end in time")
            status, body = self.request("GET", f"/v1/jobs/{job_id}?wait=60")
            if status != 200:
                raise RuntimeError(f"GET /v1/jobs/{job_id}: {status} {body[:300]!r}")
            job = json.loads(body)
            if job["state"] in ("done", "failed", "cancelled"):
                break
        if job["state"] != "done":
            raise RuntimeError(f"verdict job {job_id} ended {job['state']}: {job.get('error')}")
        results = job["results"]
        return Outcome(
            started=epoch(job["started_at"]),
            finished=epoch(job["finished_at"]),
            labels=tuple(r["label"] for r in results),
            scores=tuple(r["scores"] for r in results),
            worker=job["worker"],
        )

    def collect(self, ids, timeout=900.0):
        """Waits for every job to end; returns their outcomes in job order, raising on any not `done`."""
        deadline = time.monotonic() + timeout
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda i: self.wait_one(i, deadline), ids))
