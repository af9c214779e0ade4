-- SPDX-License-Identifier: MIT
local function check(i)
  if i % 4 == 0 then
    error("multiple of 4")
  end
  return i
end
local function run(n)
  local total, caught = 0, 0
  for i = 0, n - 1 do
    local ok, v = pcall(check, i)
    if ok then
      total = total + v
    else
      caught = caught + 1
    end
  end
  return total + caught
end
print(run(3000000))
