-- SPDX-License-Identifier: MIT
local function count_ints(n)
  local d = {}
  for i = 0, n - 1 do
    local k = i * 7919 % 1000
    d[k] = (d[k] or 0) + 1
  end
  local size = 0
  for _ in pairs(d) do size = size + 1 end
  return size + d[0] + d[999]
end
local function count_strs(words, n)
  local d = {}
  local m = #words
  for i = 0, n - 1 do
    local w = words[i % m + 1]
    d[w] = (d[w] or 0) + 1
  end
  local size = 0
  for _ in pairs(d) do size = size + 1 end
  return size + d[words[1]]
end
local words = {}
for i = 0, 499 do
  words[#words + 1] = "w" .. tostring(i * 31)
end
print(count_ints(2000000) + count_strs(words, 2000000))
