# SPDX-License-Identifier: MIT
"""ffi_call.py — N calls (argv 1, default 1e6) of libc's abs(int) through ctypes, in a loop
`i = abs(i) + 1` (bench/ffi_call.gasm).  Prints "ffi_call_ns NS" per call (CDLL: the GIL
released around each call) and "ffi_call_nogil_ns NS" (PyDLL: kept)."""
import ctypes, sys, time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000


def loop(f, n):
    i = 0
    while i < n:
        i = f(i) + 1
    return i


for name, lib in (("ffi_call_ns", ctypes.CDLL(None)), ("ffi_call_nogil_ns", ctypes.PyDLL(None))):
    f = lib.abs
    f.argtypes = [ctypes.c_int]
    f.restype = ctypes.c_int
    t0 = time.perf_counter()
    loop(f, n)
    print(name, (time.perf_counter() - t0) * 1e9 / n)
