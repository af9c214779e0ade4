# SPDX-License-Identifier: MIT
def count(n):
    i = 0
    while i < n:
        i = i + 1
    return i
print(count(100000000))
