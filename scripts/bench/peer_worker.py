"""The peer's worker: the `peer.judge` task and the model it runs, loaded once per process.

Started by peer_side.py, one process per core:

    celery -A peer_worker worker --pool=solo --concurrency=1 --queues=peer ...

(or `--pool=prefork --concurrency=N`: one parent, N children). The model is
loaded when the process that runs tasks starts (the solo worker itself, or
each prefork child) and the image encoder and the face detector are run once
on a blank image, as a verdict worker does at load, so no job pays for the
first run's allocations.
Once ready, the process touches a file in PEER_READY_DIR.

Environment: PEER_REDIS_SOCKET (see peer_app.py), PEER_PACK (the model pack),
PEER_DRAFT (1: Pillow's JPEG draft mode, 0: decode every pixel),
PEER_RESAMPLE (bicubic | bilinear | nearest), PEER_POOL (solo | prefork),
PEER_READY_DIR, PEER_WORKER_NAME.
"""

import os
import pathlib
import time

from celery import signals

import peer_model
from peer_app import TASK, app, image_store

_model = None
_store = None
# This process's name in the results: PEER_WORKER_NAME, with the pid of a prefork child.
_name = os.environ.get("PEER_WORKER_NAME", "peer")


def _load():
    global _model, _store
    _model = peer_model.PeerModel(
        os.environ["PEER_PACK"],
        draft=os.environ.get("PEER_DRAFT", "1") == "1",
        resample=os.environ.get("PEER_RESAMPLE") or None,
    )
    _store = image_store()
    _model.warm()


def _ready(tag):
    ready_dir = os.environ.get("PEER_READY_DIR")
    if ready_dir:
        (pathlib.Path(ready_dir) / f"{tag}.ready").write_text(str(os.getpid()))


@signals.worker_init.connect
def _solo_init(**_):
    if os.environ.get("PEER_POOL", "solo") == "solo":
        _load()


@signals.worker_ready.connect
def _solo_ready(**_):
    if os.environ.get("PEER_POOL", "solo") == "solo":
        _ready(_name)


@signals.worker_process_init.connect
def _child_init(**_):
    global _name
    _name = f"{_name}-{os.getpid()}"
    _load()
    _ready(_name)


@app.task(name=TASK)
def judge(image_key, texts):
    """One job: the image stored under `image_key` and its sentences.

    Returns {"started": epoch seconds, "worker": name, "verdicts": [...]};
    Celery's result meta adds `date_done`, when the result was stored.
    """
    started = time.time()
    data = _store.get(image_key)
    if data is None:
        raise peer_model.JobError(f"no image under {image_key}")
    verdicts = _model.judge(data, texts)
    _store.delete(image_key)
    return {"started": started, "worker": _name, "verdicts": verdicts}
