# SPDX-License-Identifier: MIT
def f(a, b, c):
    return a + b - c
def run(n):
    s = 0
    for i in range(n):
        s = f(s, i, 1)
    return s
print(run(5000000))
