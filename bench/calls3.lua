-- SPDX-License-Identifier: MIT
local function f(a, b, c)
  return a + b - c
end
local function run(n)
  local s = 0
  for i = 0, n - 1 do
    s = f(s, i, 1)
  end
  return s
end
print(run(5000000))
