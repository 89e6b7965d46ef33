"""The peer's side of the benchmark: Celery workers (peer_worker.py) on a private Redis, and the client that feeds them.

`--pool solo` (the default) runs one `celery worker --pool=solo` process per
core: each process takes its own jobs from Redis and runs them itself, so an
image is never copied through a pipe to a child. `--pool prefork` runs one
`celery worker --pool=prefork --concurrency=N` (a parent that takes jobs, N
children that run them), Celery's stock set-up, for comparison.

The client, from a pool of threads, stores each job's image under a key of
its own and sends the task (`send_task`, JSON, the key and the sentences);
it reads each result through Celery's result backend (`AsyncResult.get`).
"""

import concurrent.futures
import datetime
import os
import pathlib
import sys
import tempfile
import time
import uuid

from jobs import Outcome
from processes import Child, stop_all

HERE = pathlib.Path(__file__).resolve().parent


def describe(workers, pool, draft, resample):
    """The peer's configuration, in a sentence for the report."""
    import celery
    import onnxruntime
    import PIL

    processes = (
        f"{workers} `celery worker --pool=solo --concurrency=1` processes (one per core)"
        if pool == "solo"
        else f"one `celery worker --pool=prefork --concurrency={workers}`"
    )
    return (
        f"Celery {celery.__version__} on Redis (broker and result backend, unix socket), {processes}, "
        "`--prefetch-multiplier 1`, `task_acks_late`, `--without-gossip --without-mingle --without-heartbeat`, "
        "rate limits off, Celery's default log level (WARNING) into files; JSON messages carrying a Redis key "
        "under which the client stored the image bytes (claim check: no base64 of the image), deleted by the "
        f"worker when the job is done; Pillow {PIL.__version__} "
        f"{'with `draft()` for JPEG' if draft else 'decoding every pixel'}, {resample} resize, numpy; "
        f"onnxruntime {onnxruntime.__version__} with one intra-op and one inter-op thread per process on the "
        "pack's ONNX files; sentence and word embeddings cached per process by text, as verdict caches them; "
        "results read with `AsyncResult.get`"
    )


class PeerSystem:
    name = "peer"

    def __init__(self, redis_server, workers, log_dir, pack, pool="solo", draft=True, resample="bicubic"):
        self.redis = redis_server
        self.workers = workers
        self.log_dir = log_dir
        self.pack = pack
        self.pool = pool
        self.draft = draft
        self.resample = resample
        self.children = []
        self.ready_dir = pathlib.Path(tempfile.mkdtemp(prefix="bench-peer-ready-"))
        # peer_app reads the socket from the environment (its module-level app
        # is the workers'); the client makes its own app for this run's Redis.
        os.environ["PEER_REDIS_SOCKET"] = str(redis_server.socket)
        import peer_app

        self.peer_app = peer_app
        self.app = peer_app.make_app()
        self.store = peer_app.image_store()

    # -- processes -----------------------------------------------------------

    def start_service(self):
        """Nothing to start: Celery has no server of its own; Redis is up."""

    def worker_env(self, name):
        return {
            "PEER_REDIS_SOCKET": str(self.redis.socket),
            "PEER_PACK": str(self.pack),
            "PEER_DRAFT": "1" if self.draft else "0",
            "PEER_RESAMPLE": self.resample,
            "PEER_POOL": self.pool,
            "PEER_READY_DIR": str(self.ready_dir),
            "PEER_WORKER_NAME": name,
            "PYTHONPATH": str(HERE),
            # One core per process: no library may start threads of its own.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }

    def start_workers(self):
        common = [sys.executable, "-m", "celery", "-A", "peer_worker", "worker", "--queues", self.peer_app.QUEUE,
                  "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "--without-heartbeat",
                  "--loglevel", "WARNING"]
        if self.pool == "solo":
            for i in range(self.workers):
                name = f"peer{i}"
                self.children.append(Child(
                    f"peer-worker-{i}", common + ["--pool", "solo", "--concurrency", "1", "--hostname", f"{name}@bench"],
                    self.log_dir, env=self.worker_env(name), cwd=HERE,
                ))
        elif self.pool == "prefork":
            self.children.append(Child(
                "peer-worker", common + ["--pool", "prefork", "--concurrency", str(self.workers), "--hostname", "peer@bench"],
                self.log_dir, env=self.worker_env("peer"), cwd=HERE,
            ))
        else:
            raise ValueError(f"unknown pool {self.pool!r}")

    def wait_workers_ready(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self.children:
                child.check()
            if len(list(self.ready_dir.glob("*.ready"))) >= self.workers:
                return
            time.sleep(0.05)
        raise RuntimeError(f"peer workers not ready within {timeout} s")

    def peak_rss_mb(self):
        """Peak RSS of each process that runs jobs (a prefork pool's children, not its parent)."""
        if self.pool == "prefork":
            return [m for c in self.children for m in c.children_peak_rss_mb()]
        return [c.peak_rss_mb() for c in self.children]

    def stop(self):
        stop_all(self.children)
        self.app.close()
        self.store.close()
        for f in self.ready_dir.glob("*"):
            f.unlink()
        self.ready_dir.rmdir()

    # -- client --------------------------------------------------------------

    def submit_one(self, job):
        key = self.peer_app.IMAGE_KEY.format(uuid.uuid4().hex)
        self.store.set(key, job.data, ex=self.peer_app.IMAGE_TTL_S)
        result = self.app.send_task(self.peer_app.TASK, args=[key, list(job.texts)], queue=self.peer_app.QUEUE)
        return result.id

    def submit(self, jobs, concurrency):
        """Submits every job; returns (task ids in job order, epoch of the first submission)."""
        first = time.time()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            ids = list(pool.map(self.submit_one, jobs))
        return ids, first

    def collect(self, ids, timeout=900.0):
        """Waits for every task; returns their outcomes in job order, raising on any failure."""
        deadline = time.monotonic() + timeout
        outcomes = []
        for task_id in ids:
            result = self.app.AsyncResult(task_id)
            value = result.get(timeout=max(1.0, deadline - time.monotonic()), propagate=True)
            done = result.date_done
            if isinstance(done, str):
                done = datetime.datetime.fromisoformat(done)
            if done.tzinfo is None:
                done = done.replace(tzinfo=datetime.timezone.utc)
            verdicts = value["verdicts"]
            outcomes.append(Outcome(
                started=value["started"],
                finished=done.timestamp(),
                labels=tuple(v["label"] for v in verdicts),
                scores=tuple(v["scores"] for v in verdicts),
                worker=value["worker"],
            ))
        return outcomes
