# SPDX-License-Identifier: MIT
# signal_latency.py — CPython peer of signal_latency.gasm: main and a worker both count;
# the worker signals the process (main then waits for the GIL the worker holds) and the
# handler, on main, records how long the signal took to reach it.
import os, signal, sys, threading, time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
lat = []
t0 = 0
stop = False
pid = os.getpid()

def handler(signum, frame):
    lat.append(time.monotonic_ns() - t0)

def sender():
    global t0, stop
    for i in range(n):
        k = 0
        while k < 20000:
            k = k + 1
        t0 = time.monotonic_ns()
        os.kill(pid, signal.SIGUSR1)
        while len(lat) <= i:
            pass
    stop = True

def pct(p):
    s = sorted(lat)
    return s[len(s) * p // 100] / 1000.0

signal.signal(signal.SIGUSR1, handler)
th = threading.Thread(target=sender)
th.start()
while not stop:
    pass
th.join()
print("signal_latency_n", len(lat))
print("signal_latency_p50_us", pct(50))
print("signal_latency_p90_us", pct(90))
print("signal_latency_max_us", max(lat) / 1000.0)
