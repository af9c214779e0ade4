# convoy.py — CPython peer of convoy.gasm: one CPU-bound thread alone for 1 s, then with a
# thread that sleeps 1 ms in a loop and records its wake-to-run delay.
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

c = threading.Thread(target=cpu); c.start()
time.sleep(secs); stop = True; c.join()
print("convoy_alone_iters", out["cpu"])
stop = False
c = threading.Thread(target=cpu); s = threading.Thread(target=sleeper)
c.start(); s.start()
time.sleep(secs); stop = True; c.join(); s.join()
d = sorted(out["delays"])
print("convoy_with_iters", out["cpu"])
print("convoy_wakes", len(d))
print("convoy_wake_p50_us", pct(d, 50))
print("convoy_wake_p90_us", pct(d, 90))
