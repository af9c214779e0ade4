# SPDX-License-Identifier: MIT
# fairness.py — CPython peer of fairness.gasm: 4 CPU-bound threads for 2 s, started
# together and stopped together; prints each thread's iteration count.
import sys, threading, time

secs = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
stop = False
gate = threading.Lock()
counts = [0] * 4

def worker(k):
    with gate:
        pass
    n = 0
    while not stop:
        n = n + 1
    counts[k] = n

gate.acquire()
threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
time.sleep(0.05)
gate.release()
time.sleep(secs)
stop = True
for t in threads:
    t.join()
print("fairness_iters", *counts)
