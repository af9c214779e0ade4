-- SPDX-License-Identifier: MIT
local function build(n)
  local parts = {}
  for i = 0, n - 1 do
    parts[#parts + 1] = "item" .. tostring(i)
  end
  return table.concat(parts, ",")
end
local total = 0
for _ = 1, 20 do
  total = total + #build(50000)
end
print(total)
