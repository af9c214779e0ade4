# SPDX-License-Identifier: MIT
def sieve(n):
    flags = [True] * (n + 1)
    count = 0
    for i in range(2, n + 1):
        if flags[i]:
            count += 1
            for j in range(i * i, n + 1, i):
                flags[j] = False
    return count
total = 0
for _ in range(30):
    total += sieve(200000)
print(total)
