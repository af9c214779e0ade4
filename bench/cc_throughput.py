# SPDX-License-Identifier: MIT
# cc_throughput.py — CPython twin of cc_throughput.gasm (bench/ccbench): THREADS threads call
# work(1000) over and over for SECS seconds at switch interval INTERVAL; prints "iters N"
# and "secs X".  Arguments: THREADS (default 1), SECS (default 1), INTERVAL (default 0.005).
import queue, sys, threading, time


def arg(i, default):
    return sys.argv[i] if len(sys.argv) > i else default


def work(n):
    x = 1
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7fffffff
    return x


def worker(ready, go, out):
    ready.put(None)
    go.get()
    n = 0
    while True:                         # at least one call, as cc_throughput.gasm's
        work(WORK)
        n = n + 1
        if stop:
            break
    out.put(n)


nthreads = int(arg(1, "1"))
secs = float(arg(2, "1"))
sys.setswitchinterval(float(arg(3, "0.005")))
WORK = 1000
stop = False
ready, go, out = queue.SimpleQueue(), queue.SimpleQueue(), queue.SimpleQueue()
work(WORK)                              # warm-up call, as ccbench's
threads = [threading.Thread(target=worker, args=(ready, go, out)) for _ in range(nthreads)]
for th in threads:
    th.start()
for _ in range(nthreads):
    ready.get()
t0 = time.monotonic_ns()
for _ in range(nthreads):
    go.put(None)
time.sleep(secs)
t1 = time.monotonic_ns()
stop = True
total = 0
for th in threads:
    th.join()
    total = total + out.get()
print("iters", total)
print("secs", (t1 - t0) / 1e9)
