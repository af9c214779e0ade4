# SPDX-License-Identifier: MIT
# pingpong.py — CPython peer of pingpong.gasm: two threads bounce a turn back and forth,
# through two Locks used as binary semaphores (the classic CPython handoff benchmark) and
# through two queue.SimpleQueues (what pingpong.gasm does).  Prints µs per round trip.
import queue, sys, threading, time

n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 20000
warm = n // 10

def locks():
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire(); pong.acquire()
    def ponger():
        for _ in range(n + warm):
            ping.acquire()
            pong.release()
    t = threading.Thread(target=ponger); t.start()
    for i in range(n + warm):
        if i == warm:
            t0 = time.perf_counter()
        ping.release()
        pong.acquire()
    dt = time.perf_counter() - t0
    t.join()
    return dt / n * 1e6

def queues():
    ping, pong = queue.SimpleQueue(), queue.SimpleQueue()
    def ponger():
        for _ in range(n + warm):
            pong.put(ping.get())
    t = threading.Thread(target=ponger); t.start()
    for i in range(n + warm):
        if i == warm:
            t0 = time.perf_counter()
        ping.put(i)
        pong.get()
    dt = time.perf_counter() - t0
    t.join()
    return dt / n * 1e6

print("pingpong_lock_us", locks())
print("pingpong_us", queues())
