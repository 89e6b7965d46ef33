"""What both systems of the peer benchmark are given, and what each gives back per job.

A `Job` is the same image bytes and sentences for verdict and for the peer;
an `Outcome` is one finished job as the system recorded it, with times on the
host's wall clock (verdict: Redis `TIME` in the job record; the peer: the
task's own clock at its start and Celery's `date_done` when it stored the
result; one host, so one clock).
"""

import dataclasses
import pathlib

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


@dataclasses.dataclass(frozen=True)
class Job:
    data: bytes
    filename: str
    content_type: str
    texts: tuple

    @classmethod
    def from_file(cls, path, texts):
        path = pathlib.Path(path)
        return cls(path.read_bytes(), path.name, CONTENT_TYPES[path.suffix.lower()], tuple(texts))


@dataclasses.dataclass(frozen=True)
class Outcome:
    started: float  # epoch seconds: the worker took the job
    finished: float  # epoch seconds: the result was stored
    labels: tuple  # one per sentence
    scores: tuple  # one {yes, no, maybe} per sentence
    worker: str
