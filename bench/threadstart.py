# SPDX-License-Identifier: MIT
# threadstart.py — CPython peer of threadstart.gasm: threading.Thread start + join of an
# empty function, n times after a warm-up tenth; prints µs per start + join.
import sys, threading, time

n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 2000

def nothing():
    pass

def many(k):
    for _ in range(k):
        t = threading.Thread(target=nothing)
        t.start()
        t.join()

many(n // 10)
t0 = time.perf_counter()
many(n)
print("thread_us", (time.perf_counter() - t0) / n * 1e6)
