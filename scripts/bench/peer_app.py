"""The peer's Celery application: Redis as broker and result backend, one task, `peer.judge`.

The configuration is the peer's best honest one for short CPU-bound jobs
(documented in the benchmark's section of docs/benchmarks.md):

* broker and results on the same Redis as the images, over its unix socket;
* JSON messages (Celery's safe default; no pickle). The image does not travel
  in the message: the client stores its bytes under a key of their own
  (`peer:image:{job}`, raw, with an expiry) and the message carries the key,
  the "claim check" pattern Celery's docs recommend for large arguments. That
  spares the peer two base64 encodings of every image (JSON's, then kombu's
  envelope). The worker deletes the key when the job is done, as verdict
  deletes a finished job's image;
* `task_acks_late` with `worker_prefetch_multiplier = 1`: a job is acknowledged
  when it is done, so a worker that dies loses no job (verdict's consumer group
  is at-least-once too), and a worker holds one job at a time, so neither
  worker sits idle while the other has jobs in reserve at the end of a drain;
* rate limits off (`worker_disable_rate_limits`), no task events, no
  `STARTED` state: nothing the jobs do not need.

Environment (set by peer_side.py for workers and client alike):
PEER_REDIS_SOCKET  the Redis unix socket.
"""

import os

import redis
from celery import Celery

QUEUE = "peer"
TASK = "peer.judge"
IMAGE_KEY = "peer:image:{}"
IMAGE_TTL_S = 3600


def socket_path():
    path = os.environ.get("PEER_REDIS_SOCKET")
    if not path:
        raise RuntimeError("PEER_REDIS_SOCKET is not set")
    return path


def image_store():
    """A Redis client for the image bytes (the claim checks)."""
    return redis.Redis(unix_socket_path=socket_path())


def make_app():
    url = f"redis+socket://{socket_path()}"
    app = Celery("peer", broker=url, backend=url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        worker_disable_rate_limits=True,
        worker_send_task_events=False,
        task_track_started=False,
        result_expires=IMAGE_TTL_S,
        broker_connection_retry_on_startup=True,
        # A job that lasts longer than this is redelivered; far above any job here.
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
    )
    return app


app = make_app()
