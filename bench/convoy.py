# SPDX-License-Identifier: MIT
# convoy.py — CPython peer of convoy.gasm: one CPU-bound thread alone and with a thread that
# sleeps 1 ms in a loop and records its wake-to-run delay; phases alone, with, with, alone.
import sys, threading, time

secs = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
stop = False
out = {}

def cpu():
    n = 0
    while not stop:
        n = n + 1
    out["cpu"] = n

def sleeper():
    delays = []
    while not stop:
        t0 = time.monotonic_ns()
        time.sleep(0.001)
        delays.append(time.monotonic_ns() - t0 - 1000000)
    out["delays"] = delays

def pct(xs, p):
    return xs[len(xs) * p // 100] / 1000.0

def phase(with_sleeper, secs):
    global stop
    stop = False
    out.clear()
    c = threading.Thread(target=cpu); c.start()
    if with_sleeper:
        s = threading.Thread(target=sleeper); s.start()
    time.sleep(secs)
    stop = True
    c.join()
    if with_sleeper:
        s.join()
    return out["cpu"], out.get("delays", [])

# alone, with, with, alone: a drift of the machine's speed hits both the same
a1, w1, w2, a2 = (phase(w, secs / 2) for w in (False, True, True, False))
d = sorted(w1[1] + w2[1])
print("convoy_alone_iters", a1[0] + a2[0])
print("convoy_with_iters", w1[0] + w2[0])
print("convoy_wakes", len(d))
print("convoy_wake_p50_us", pct(d, 50))
print("convoy_wake_p90_us", pct(d, 90))
