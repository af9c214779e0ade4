# SPDX-License-Identifier: MIT
def mandel(n):
    count = 0
    for y in range(n):
        ci = 2.0 * y / n - 1.0
        for x in range(n):
            cr = 2.5 * x / n - 2.0
            zr = 0.0
            zi = 0.0
            i = 0
            while i < 50:
                tr = zr * zr - zi * zi + cr
                zi = 2.0 * zr * zi + ci
                zr = tr
                if zr * zr + zi * zi > 4.0:
                    break
                i += 1
            count += i
    return count
print(mandel(500))
