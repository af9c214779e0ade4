-- SPDX-License-Identifier: MIT
-- ffi_qsort.lua — libc's qsort of N int32s (arg 1, default 100,000; the same pseudo-random
-- values as bench/ffi_qsort.gasm) with a Lua comparator through LuaJIT's ffi callbacks.
-- Run with -joff.  Prints "ffi_qsort_ms MS" (the sort alone).
local ffi = require("ffi")
ffi.cdef[[void qsort(void *base, size_t nmemb, size_t size, int (*compar)(const void *, const void *));]]
local n = tonumber(arg and arg[1]) or 100000
local a = ffi.new("int32_t[?]", n)
local x = 1
for i = 0, n - 1 do
  x = (x * 1103515245 + 12345) % 2147483648
  a[i] = x
end
local cmp = ffi.cast("int (*)(const void *, const void *)", function(p, q)
  return ffi.cast("const int32_t *", p)[0] - ffi.cast("const int32_t *", q)[0]
end)
-- one untimed sort first, as in ffi_qsort.gasm (the first sort of a process warms malloc up)
local b = ffi.new("int32_t[?]", n)
ffi.copy(b, a, n * 4)
ffi.C.qsort(b, n, 4, cmp)
local t0 = os.clock()
ffi.C.qsort(a, n, 4, cmp)
local ms = (os.clock() - t0) * 1000
for i = 1, n - 1 do assert(a[i - 1] <= a[i], "not sorted") end
cmp:free()
print("ffi_qsort_ms", ms)
