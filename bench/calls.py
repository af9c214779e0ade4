# SPDX-License-Identifier: MIT
def f(x):
    return x
def loop(n):
    i = 0
    while i < n:
        i = f(i) + 1
    return i
print(loop(10000000))
