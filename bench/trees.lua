-- SPDX-License-Identifier: MIT
local function make(depth)
  if depth == 0 then
    return {}
  end
  return {make(depth - 1), make(depth - 1)}
end
local function check(t)
  if t[1] == nil then
    return 1
  end
  return 1 + check(t[1]) + check(t[2])
end
local function run(maxdepth)
  local total = check(make(maxdepth + 1))
  local longlived = make(maxdepth)
  for depth = 4, maxdepth, 2 do
    for _ = 1, 2 ^ (maxdepth - depth + 4) do
      total = total + check(make(depth))
    end
  end
  return total + check(longlived)
end
print(run(14))
