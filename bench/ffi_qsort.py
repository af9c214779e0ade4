# SPDX-License-Identifier: MIT
"""ffi_qsort.py — libc's qsort of N int32s (argv 1, default 100,000; the same pseudo-random
values as bench/ffi_qsort.gasm) with a Python comparator through ctypes.CFUNCTYPE.
Prints "ffi_qsort_ms MS" (the sort alone; CDLL: the GIL released around qsort, each
comparison takes it back) and "ffi_qsort_nogil_ms MS" (PyDLL: kept)."""
import ctypes, sys, time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
a = (ctypes.c_int32 * n)()
x = 1
for i in range(n):
    x = (x * 1103515245 + 12345) % 2147483648
    a[i] = x
CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int32))
cmp = CMP(lambda p, q: p[0] - q[0])
data = list(a)
# one untimed sort first, as in ffi_qsort.gasm (the first sort of a process warms malloc up)
qsort = ctypes.CDLL(None).qsort
qsort.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, CMP]
qsort.restype = None
qsort(a, n, 4, cmp)
for name, lib in (("ffi_qsort_ms", ctypes.CDLL(None)), ("ffi_qsort_nogil_ms", ctypes.PyDLL(None))):
    a[:] = data
    qsort = lib.qsort
    qsort.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, CMP]
    qsort.restype = None
    t0 = time.perf_counter()
    qsort(a, n, 4, cmp)
    ms = (time.perf_counter() - t0) * 1000
    assert all(a[i - 1] <= a[i] for i in range(1, n)), "not sorted"
    print(name, ms)
