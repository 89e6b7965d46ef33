"""What `--durability replicated` costs a submission, against `async`,
side by side in one run (issue 19).

A primary and a replica (`redis-server --replicaof`, no persistence, free
TCP ports of 127.0.0.1, never 6379) and two verdict-api processes on the
same primary: one `--durability async` (202 once the primary has the job),
one `--durability replicated` (202 once `WAIT 1` says the replica has it
too). No workers: the jobs stay queued, so only the submission is timed.
Each round submits one job to each api (the order alternating round by
round), one at a time on a kept-alive HTTP connection, and times
`POST /v1/jobs` from the request to the end of the answer; p50, p95 and p99
of each, and the difference of the medians, are what `WAIT` adds.

  python3 scripts/bench/durability.py [--rounds 400] [--write docs/benchmarks.md] BIN_DIR
"""

import base64
import http.client
import json
import pathlib
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "lib"))
from cpu_info import cpu, load_average  # noqa: E402
from doc_section import write_flag, write_marked  # noqa: E402

START = "<!-- bench-durability:start -->"
END = "<!-- bench-durability:end -->"
WARMUP = 50


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_png(width=8, height=8):
    """An 8x8 grey PNG (the size the tests submit): the image is not what is measured."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def wait_port(port, process, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited at start (code {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} within {timeout} s")


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          check=True).stdout


class Api:
    def __init__(self, program, durability, redis_port, workdir, processes):
        self.durability = durability
        self.port = free_port()
        log = open(workdir / f"api-{durability}.log", "wb")
        self.process = subprocess.Popen(
            [str(program), "--redis", f"redis://127.0.0.1:{redis_port}",
             "--bind", f"127.0.0.1:{self.port}", "--log-format", "json", "--durability", durability,
             "--max-queue-depth", "0"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        processes.append(self.process)
        wait_port(self.port, self.process, f"verdict-api --durability {durability}")
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def submit(self, body):
        started = time.perf_counter()
        self.conn.request("POST", "/v1/jobs", body, {"content-type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        took = time.perf_counter() - started
        if response.status != 202:
            raise SystemExit(f"--durability {self.durability}: {response.status} {data[:300]!r}")
        return took


def percentile(sorted_samples, q):
    return sorted_samples[min(len(sorted_samples) - 1, int(q * len(sorted_samples)))]


def main(argv):
    write, argv = write_flag(argv)
    rounds = 400
    if "--rounds" in argv:
        i = argv.index("--rounds")
        rounds = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    bin_dir = pathlib.Path(argv[0] if argv else "target/release")
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server not found on PATH (scripts/lib/system-packages redis-server)")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="verdict-bench-durability-"))
    # A copy: a build in the same target directory while this runs (another
    # checkout sharing it) cannot swap the binary under the benchmark.
    program = workdir / "verdict-api"
    shutil.copy2(bin_dir / "verdict-api", program)
    processes = []
    try:
        primary, replica = free_port(), free_port()
        for name, port, extra in (("primary", primary, []),
                                  ("replica", replica, ["--replicaof", "127.0.0.1", str(primary)])):
            (workdir / name).mkdir()
            log = open(workdir / f"{name}.log", "wb")
            process = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(workdir / name), *extra],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            processes.append(process)
            wait_port(port, process, f"redis {name}")
        deadline = time.monotonic() + 30
        while "master_link_status:up" not in redis_cli(replica, "INFO", "replication"):
            if time.monotonic() > deadline:
                raise SystemExit("the replica did not sync")
            time.sleep(0.05)
        apis = [Api(program, "async", primary, workdir, processes),
                Api(program, "replicated", primary, workdir, processes)]
        image = base64.b64encode(tiny_png()).decode()
        samples = {api.durability: [] for api in apis}
        info, load_start = cpu(), load_average()
        for n in range(WARMUP + rounds):
            order = apis if n % 2 == 0 else apis[::-1]
            for api in order:
                body = json.dumps({"image_base64": image, "texts": [f"durability bench {n}"]})
                took = api.submit(body)
                if n >= WARMUP:
                    samples[api.durability].append(took * 1000)
        load_end = load_average()
        offsets = redis_cli(primary, "INFO", "replication")
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    if "connected_slaves:1" not in offsets:
        raise SystemExit("the replica was not connected at the end: the figures mean nothing")

    stats = {}
    for mode, values in samples.items():
        values.sort()
        stats[mode] = {q: percentile(values, q) for q in (0.5, 0.95, 0.99)}
        stats[mode]["mean"] = sum(values) / len(values)
    added = stats["replicated"][0.5] - stats["async"][0.5]
    added_p95 = stats["replicated"][0.95] - stats["async"][0.95]
    lines = [START, "", "## Durability: `--durability replicated` against `async` (`scripts/bench-durability`)", "",
             f"Measured {time.strftime('%Y-%m-%d')} on {info['text']}, {info['logical_cpus']} logical CPUs; "
             f"1-minute load average {load_start:.2f} at the start and {load_end:.2f} at the end. "
             f"Binaries: `{bin_dir}`. A primary and a replica (`redis-server --replicaof`, TCP on "
             "127.0.0.1, no persistence) and two verdict-api processes on the same primary, one per "
             f"mode; no workers. {rounds} rounds after {WARMUP} of warm-up, each submitting one job "
             "(an 8x8 PNG, one sentence) to each api, the order alternating; one request at a "
             "time on a kept-alive connection; `POST /v1/jobs` timed by the client.", "",
             "| durability | what a 202 means | p50 | p95 | p99 | mean |",
             "|---|---|---|---|---|---|"]
    meaning = {"async": "the primary has the job", "replicated": "the replica has it too (`WAIT 1`)"}
    for mode in ("async", "replicated"):
        s = stats[mode]
        lines.append(f"| `{mode}` | {meaning[mode]} | {s[0.5]:.2f} ms | {s[0.95]:.2f} ms | "
                     f"{s[0.99]:.2f} ms | {s['mean']:.2f} ms |")
    lines += ["", f"`replicated` adds {added:.2f} ms at the median and {added_p95:.2f} ms at p95: one "
              "round trip from the primary to the replica and back (Redis asks the replica for its "
              "offset at once), here on one machine; across a network, add that network's round "
              "trip.", "", END]
    section = "\n".join(lines)
    print(section)
    if write:
        write_marked(write, START, END, section)


if __name__ == "__main__":
    main(sys.argv[1:])
