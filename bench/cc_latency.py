# SPDX-License-Identifier: MIT
# cc_latency.py — CPython twin of cc_latency.gasm (bench/ccbench): while THREADS CPU-bound
# threads run work(1000), the main thread waits in os.read on a pipe that a forked child
# writes the monotonic time into every PING seconds (jittered) for SECS seconds; prints
# "samples N", "avg_ms X" and "max_ms X".
# Arguments: THREADS (default 0), SECS (default 2), INTERVAL (default 0.005), PING (default 0.025).
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


def pinger(gate, w, n, ping):
    os.read(gate, 1)
    for i in range(n):
        time.sleep(ping * (0.5 + (i * 7 % 10) / 10))
        os.write(w, b"%d\n" % time.monotonic_ns())


def receive(r):
    count = total = worst = 0
    while True:
        data = os.read(r, 4096)
        t = time.monotonic_ns()
        if not data:
            return count, total, worst
        for s in data.split():
            d = t - int(s)
            count = count + 1
            total = total + d
            worst = max(worst, d)


nthreads = int(arg(1, "0"))
secs = float(arg(2, "2"))
sys.setswitchinterval(float(arg(3, "0.005")))
ping = float(arg(4, "0.025"))
pings = max(1, int(secs / ping))
WORK = 1000
stop = False
ready, go, out = queue.SimpleQueue(), queue.SimpleQueue(), queue.SimpleQueue()
work(WORK)                              # warm-up call, as ccbench's
r, w = os.pipe()
gate_r, gate_w = os.pipe()
pid = os.fork()                         # before any thread starts
if pid == 0:
    os.close(r)
    pinger(gate_r, w, pings, ping)
    os._exit(0)
os.close(w)
os.close(gate_r)
threads = [threading.Thread(target=worker, args=(ready, go, out)) for _ in range(nthreads)]
for th in threads:
    th.start()
for _ in range(nthreads):
    ready.get()
for _ in range(nthreads):
    go.put(None)
os.write(gate_w, b"g")
count, total, worst = receive(r)
stop = True
for th in threads:
    th.join()
os.waitpid(pid, 0)
print("samples", count)
print("avg_ms", total / count / 1e6)
print("max_ms", worst / 1e6)
