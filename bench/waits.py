#!/usr/bin/env python3
"""How soon a scenario's wait lets the next step go, once what it waits for has happened: from that row's time to
the start of the next call, on the run's one clock (CLOSE_WAIT, B's FIN, A's RST, as `run -f json` shows them).

The waits on the wire and on the kernel's events (the capture's and the trace's reading threads feed the player)
against the reference measured in the same run: a poll of the socket's own state for the same moment. Medians of
N runs each (default 30; BENCH_RUNS). Needs root (capture and tracefs). Usage: python3 bench/waits.py [BIN]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/tcp-close-watch"
N = int(os.environ.get("BENCH_RUNS", "30"))


def scenario(first, second):
    return (f"scenario waits-bench\nsummary latency of waits\nA connect\nB accept\nB close\n{first}\n"
            f"A send \"x\\n\"\n{second}\nA close\n")


VIEW = scenario("wait B sends FIN", "wait A kernel receives RST")
POLL = scenario("wait A state CLOSE_WAIT", "wait A state CLOSE")
# what, its scenario, the row it waits for, the call after it
CASES = [
    ("wait A state CLOSE_WAIT (poll, reference)", POLL,
     lambda r: r.get("event") == "state" and r["side"] == "A" and r["new"] == "CLOSE_WAIT", "send"),
    ("wait B sends FIN (capture)", VIEW,
     lambda r: r["kind"] == "segment" and r["side"] == "B" and "F" in r["flags"], "send"),
    ("wait A kernel receives RST (trace)", VIEW,
     lambda r: r.get("event") == "receive_reset" and r["side"] == "A", "close()"),
]


def latency(path, awaited, after):
    o = subprocess.run([BIN, "run", "--scenario", path, "-f", "json"], capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in o.stdout.splitlines()]
    t0 = next(r["t_us"] for r in rows if awaited(r))
    t1 = next(r["t_us"] for r in rows if r["kind"] == "call" and r["side"] == "A" and r["call"].startswith(after))
    return t1 - t0


def main():
    if not os.access(BIN, os.X_OK):
        subprocess.run(["cargo", "build", "--release", "--quiet"], check=True)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        files = {}
        for text in (VIEW, POLL):
            files[text] = os.path.join(d, f"{len(files)}.scenario")
            with open(files[text], "w") as f:
                f.write(text)
        # interleaved, so that a busy moment of the machine falls on every case alike
        for _ in range(N):
            for name, text, awaited, after in CASES:
                results.setdefault(name, []).append(latency(files[text], awaited, after))
    ref = statistics.median(results[CASES[0][0]])
    print(f"{'wait (median of ' + str(N) + ' runs)':44} {'µs':>6} {'p90 µs':>7}  ratio")
    for name, *_ in CASES:
        lat = sorted(results[name])
        med = statistics.median(lat)
        print(f"{name:44} {med:6.0f} {lat[int(0.9 * (len(lat) - 1))]:7.0f}  {med / ref:.1f}× the poll")


if __name__ == "__main__":
    main()
