# SPDX-License-Identifier: MIT
def check(i):
    if i % 4 == 0:
        raise ValueError("multiple of 4")
    return i
def run(n):
    total = 0
    caught = 0
    for i in range(n):
        try:
            total += check(i)
        except ValueError:
            caught += 1
    return total + caught
print(run(3000000))
