# SPDX-License-Identifier: MIT
# interp_create.py — CPython peer of interp_create.gasm: create + destroy a sub-interpreter
# (_interpreters in 3.13+, _xxsubinterpreters before; isolated config where the module takes
# one), n times after a warm-up tenth; prints "interp_us X", or nothing without the module.
import sys, time

try:
    import _interpreters as mod
except ImportError:
    try:
        import _xxsubinterpreters as mod
    except ImportError:
        sys.exit(0)

n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 200

def many(k):
    for _ in range(k):
        mod.destroy(mod.create())

many(max(1, n // 10))
t0 = time.perf_counter()
many(n)
print("interp_us", (time.perf_counter() - t0) / n * 1e6)
