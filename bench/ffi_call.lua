-- SPDX-License-Identifier: MIT
-- ffi_call.lua — N calls (arg 1, default 1e6) of libc's abs(int) through LuaJIT's ffi, in a
-- loop `i = abs(i) + 1` (bench/ffi_call.gasm).  Run with -joff for the interpreter's call
-- path.  Prints "ffi_call_ns NS" per call.
local ffi = require("ffi")
ffi.cdef[[int abs(int);]]
local C = ffi.C
local n = tonumber(arg and arg[1]) or 1000000
local function loop(n)
  local i = 0
  while i < n do
    i = C.abs(i) + 1
  end
  return i
end
local t0 = os.clock()
loop(n)
print("ffi_call_ns", (os.clock() - t0) * 1e9 / n)
