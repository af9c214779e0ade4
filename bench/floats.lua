-- SPDX-License-Identifier: MIT
local function mandel(n)
  local count = 0
  for y = 0, n - 1 do
    local ci = 2.0 * y / n - 1.0
    for x = 0, n - 1 do
      local cr = 2.5 * x / n - 2.0
      local zr, zi = 0.0, 0.0
      local i = 0
      while i < 50 do
        local tr = zr * zr - zi * zi + cr
        zi = 2.0 * zr * zi + ci
        zr = tr
        if zr * zr + zi * zi > 4.0 then break end
        i = i + 1
      end
      count = count + i
    end
  end
  return count
end
print(mandel(500))
