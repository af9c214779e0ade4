-- SPDX-License-Identifier: MIT
local function count(n)
  local i = 0
  while i < n do
    i = i + 1
  end
  return i
end
print(count(100000000))
