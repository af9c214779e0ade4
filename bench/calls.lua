-- SPDX-License-Identifier: MIT
local function f(x) return x end
local function loop(n)
  local i = 0
  while i < n do
    i = f(i) + 1
  end
  return i
end
print(loop(10000000))
