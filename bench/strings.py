# SPDX-License-Identifier: MIT
def build(n):
    parts = []
    for i in range(n):
        parts.append("item" + str(i))
    return ",".join(parts)
total = 0
for r in range(20):
    total += len(build(50000))
print(total)
