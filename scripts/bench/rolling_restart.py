"""`fleet restart worker` under a steady stream of jobs: how long jobs wait
for a worker while the workers are replaced, rolling (the default) against
all at once (`--all-at-once`, the old behaviour), side by side in one run
(issue 17: "no job waits more than 1 s during `fleet restart worker` with 2
workers"). A timing, so it lives here and not in a test; the test
(tests/fleet_control.rs) checks the order of the rolling restart.

Each round: a fleet of 2 workers with the default model (a restarted worker
loads it again before it takes a job, as in production) on a free port, a
client submitting a job (coffee.png, one sentence) every 100 ms, the restart
2 s in, 3 s more of jobs; then every job's queue wait (started_at - submitted_at,
both on Redis's clock) is read back.
"""

import base64
import json
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "lib"))
from cpu_info import cpu, load_average  # noqa: E402
from doc_section import write_flag, write_marked  # noqa: E402

START = "<!-- bench-rolling-restart:start -->"
END = "<!-- bench-rolling-restart:end -->"
IMAGE = base64.b64encode(pathlib.Path(".cache/photos/coffee.png").read_bytes()).decode()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def round_once(fleet_bin, all_at_once):
    home = tempfile.mkdtemp(prefix="verdict-rr-")
    port = free_port()
    api = f"http://127.0.0.1:{port}"

    def fleet(*args):
        return subprocess.run([fleet_bin, "--home", home, *args], capture_output=True, text=True)

    up = fleet("up", "--allow-root", "--model", "models/default", "--workers", "2",
               "--bind", f"127.0.0.1:{port}", "--timeout", "120s")
    if up.returncode != 0:
        raise SystemExit(f"fleet up failed: {up.stderr}")
    ids, stop = [], threading.Event()

    def submit():
        i = 0
        while not stop.is_set():
            body = json.dumps({"image_base64": IMAGE, "texts": [f"This is a ceramic coffee cup ({i})."]}).encode()
            request = urllib.request.Request(api + "/v1/jobs", body, {
                "content-type": "application/json", "idempotency-key": f"rr-{port}-{i}"})
            ids.append(json.load(urllib.request.urlopen(request))["id"])
            i += 1
            time.sleep(0.1)

    client = threading.Thread(target=submit)
    client.start()
    try:
        time.sleep(2)
        started = time.monotonic()
        restart = fleet("restart", "worker", *(["--all-at-once"] if all_at_once else []))
        took = time.monotonic() - started
        if restart.returncode != 0:
            raise SystemExit(f"fleet restart failed: {restart.stderr}")
        time.sleep(3)
    finally:
        stop.set()
        client.join()
    waits, states = [], set()
    for job_id in ids:
        job = json.load(urllib.request.urlopen(f"{api}/v1/jobs/{job_id}?wait=60"))
        states.add(job["state"])
        waits.append(when(job["started_at"]) - when(job["submitted_at"]))
    fleet("down")
    waits.sort()
    return {"jobs": len(waits), "states": sorted(states), "restart_s": took,
            "max_ms": waits[-1] * 1000, "p99_ms": waits[max(0, int(len(waits) * 0.99) - 1)] * 1000,
            "median_ms": waits[len(waits) // 2] * 1000}


def main(argv):
    write, argv = write_flag(argv)
    fleet_bin = argv[0] if argv else "target/release/fleet"
    rounds = 3
    info, load_start = cpu(), load_average()
    results = {"rolling": [], "all at once": []}
    for _ in range(rounds):
        results["rolling"].append(round_once(fleet_bin, False))
        results["all at once"].append(round_once(fleet_bin, True))
    load_end = load_average()
    lines = [START, "", "## Rolling restart (`scripts/bench-rolling-restart`)", "",
             f"Measured {time.strftime('%Y-%m-%d')} on {info['text']}, {info['logical_cpus']} logical CPUs; "
             f"1-minute load average {load_start:.2f} at the start and {load_end:.2f} at the end. "
             f"Binaries: `{fleet_bin}` and its siblings. {rounds} rounds, interleaved. Each: `fleet up --model models/default --workers 2`, a "
             "client submitting a job (coffee.png, one sentence) every 100 ms, `fleet restart worker` 2 s in, "
             "3 s more of jobs; queue "
             "wait = started_at - submitted_at (Redis's clock) of every job. Issue 17's target: no "
             "job waits more than 1 s while the workers are replaced rolling.", "",
             "| restart | round | jobs | all done | restart took | queue wait max | p99 | median |",
             "|---|---|---|---|---|---|---|---|"]
    for mode, rows in results.items():
        for i, r in enumerate(rows, 1):
            lines.append(f"| {mode} | {i} | {r['jobs']} | {'yes' if r['states'] == ['done'] else r['states']} | "
                         f"{r['restart_s']:.1f} s | {r['max_ms']:.0f} ms | {r['p99_ms']:.0f} ms | {r['median_ms']:.1f} ms |")
    worst = max(r["max_ms"] for r in results["rolling"])
    lines += ["", f"Rolling: the longest queue wait of any job in any round was {worst:.0f} ms "
              f"({'within' if worst <= 1000 else 'over'} the 1 s target).", "", END]
    section = "\n".join(lines)
    print(section)
    if write:
        write_marked(write, START, END, section)


if __name__ == "__main__":
    main(sys.argv[1:])
