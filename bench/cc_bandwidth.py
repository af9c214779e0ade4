# SPDX-License-Identifier: MIT
# cc_bandwidth.py — CPython twin of cc_bandwidth.gasm (bench/ccbench): while THREADS
# CPU-bound threads run work(1000), the main thread and an echo thread bounce a 1024-byte
# message through two pipes for SECS seconds; prints "round_trips N" and "secs X".
# Arguments: THREADS (default 0), SECS (default 1), INTERVAL (default 0.005).
import os, queue, sys, threading, time


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


def echo(r, w):
    while True:
        d = os.read(r, 1024)
        if not d:
            return
        os.write(w, d)


def exchange(w, r, msg, secs):
    n = 0
    t0 = time.monotonic_ns()
    end = t0 + int(secs * 1e9)
    while True:
        os.write(w, msg)
        os.read(r, 1024)
        n = n + 1
        t = time.monotonic_ns()
        if t >= end:
            return n, (t - t0) / 1e9


nthreads = int(arg(1, "0"))
secs = float(arg(2, "1"))
sys.setswitchinterval(float(arg(3, "0.005")))
WORK = 1000
stop = False
ready, go, out = queue.SimpleQueue(), queue.SimpleQueue(), queue.SimpleQueue()
work(WORK)                              # warm-up call, as ccbench's
out_r, out_w = os.pipe()
back_r, back_w = os.pipe()
msg = b"x" * 1024
echo_thread = threading.Thread(target=echo, args=(out_r, back_w))
echo_thread.start()
exchange(out_w, back_r, msg, 0)         # one round trip to warm up
threads = [threading.Thread(target=worker, args=(ready, go, out)) for _ in range(nthreads)]
for th in threads:
    th.start()
for _ in range(nthreads):
    ready.get()
for _ in range(nthreads):
    go.put(None)
n, took = exchange(out_w, back_r, msg, secs)
os.close(out_w)
echo_thread.join()
stop = True
for th in threads:
    th.join()
print("round_trips", n)
print("secs", took)
