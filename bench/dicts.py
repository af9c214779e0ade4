# SPDX-License-Identifier: MIT
def count_ints(n):
    d = {}
    for i in range(n):
        k = i * 7919 % 1000
        d[k] = d.get(k, 0) + 1
    return len(d) + d[0] + d[999]
def count_strs(words, n):
    d = {}
    m = len(words)
    for i in range(n):
        w = words[i % m]
        d[w] = d.get(w, 0) + 1
    return len(d) + d[words[0]]
words = []
for i in range(500):
    words.append("w" + str(i * 31))
print(count_ints(2000000) + count_strs(words, 2000000))
