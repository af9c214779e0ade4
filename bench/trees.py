# SPDX-License-Identifier: MIT
def make(depth):
    if depth == 0:
        return (None, None)
    return (make(depth - 1), make(depth - 1))
def check(t):
    if t[0] is None:
        return 1
    return 1 + check(t[0]) + check(t[1])
def run(maxdepth):
    total = check(make(maxdepth + 1))
    longlived = make(maxdepth)
    for depth in range(4, maxdepth + 1, 2):
        for i in range(2 ** (maxdepth - depth + 4)):
            total += check(make(depth))
    return total + check(longlived)
print(run(14))
