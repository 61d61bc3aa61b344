#!/usr/bin/env python3
"""Runs of `netpolc build FLEET` as a person or CI runs them, one at a time.

How fast a run is depends on what the machine did just before it
(decisions 0028 and 0029), so this runner sets that up:

  blocks  runs of one binary back to back, after 2 warm-ups (what hyperfine
          measures); three rounds, the binaries' blocks alternated
  churn   each run right after another process touched 300 MB and exited
  idle    each run after a pause (IDLE seconds, 3 by default)

Usage: benches/cli_runs.py MODE N FLEET LABEL=BINARY[,ENV=VALUE...] ...

It prints, per binary, wall time (mean, median, p90), user and system time,
peak RSS and minor faults, from `wait4`, and how many runs took under 150 ms.

Before and after the runs it measures how many cores the host gives: one
busy process alone, then two at once (2.0: two whole cores). The two
virtual cores here are sometimes worth much less than two, and then no
parallel program scales.
"""

import os
import statistics
import subprocess
import sys
import time

CHURN = ["python3", "-c", "b = bytearray(300 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1"]
SPIN = ["python3", "-c", "s = 0\nfor i in range(4_000_000): s += i"]


def host_cores():
    """How many times the work of one busy process two of them do in the
    same time (the fastest of three tries each: a single try is noisy)."""

    def fastest(processes):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            for child in [subprocess.Popen(SPIN) for _ in range(processes)]:
                child.wait()
            times.append(time.perf_counter() - start)
        return min(times)

    return 2 * fastest(1) / fastest(2)


def configuration(text):
    label, rest = text.split("=", 1)
    binary, *settings = rest.split(",")
    env = dict(os.environ)
    for setting in settings:
        key, value = setting.split("=", 1)
        env[key] = value
    return label, binary, env


def run(binary, env, fleet):
    start = time.perf_counter()
    child = subprocess.Popen([binary, "build", fleet], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        sys.exit(f"{binary} exited with status {status}")
    wall = (time.perf_counter() - start) * 1000
    return wall, usage.ru_utime * 1000, usage.ru_stime * 1000, usage.ru_maxrss / 1024, usage.ru_minflt


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    mode, n, fleet = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    configurations = [configuration(c) for c in sys.argv[4:]]
    results = {label: [] for label, _, _ in configurations}
    pause = float(os.environ.get("IDLE", "3"))
    rounds = 3 if mode == "blocks" else n
    cores_before = host_cores()
    for i in range(rounds):
        order = configurations if i % 2 == 0 else configurations[::-1]
        for label, binary, env in order:
            if mode == "blocks":
                for k in range(n + 2):
                    measured = run(binary, env, fleet)
                    if k >= 2:
                        results[label].append(measured)
                continue
            if mode == "churn":
                subprocess.run(CHURN, check=True)
            elif mode == "idle":
                time.sleep(pause)
            else:
                sys.exit(f"unknown mode {mode}")
            results[label].append(run(binary, env, fleet))
    print(f"host cores (2.0: two whole cores): {cores_before:.2f} before the runs, {host_cores():.2f} after")
    for label, runs in results.items():
        walls = sorted(r[0] for r in runs)
        mean = lambda j: statistics.mean(r[j] for r in runs)  # noqa: E731
        print(
            f"{label:12} wall mean {statistics.mean(walls):6.1f} med {statistics.median(walls):6.1f} "
            f"p90 {walls[int(len(walls) * 0.9)]:6.1f} ms | user {mean(1):6.1f} sys {mean(2):5.1f} ms | "
            f"rss {statistics.median(r[3] for r in runs):5.1f} MB | faults {mean(4):6.0f} | "
            f"under 150 ms: {sum(w < 150 for w in walls)}/{len(walls)}"
        )


if __name__ == "__main__":
    main()
