-- SPDX-License-Identifier: MIT
local function total(n)
  local s = 0
  for i = 0, n - 1 do
    s = s + i
  end
  return s
end
print(total(14000000))
