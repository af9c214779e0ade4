/* SPDX-License-Identifier: MIT */
/* The string hash's per-process key (object.h): random, or fixed by GILVM_HASHSEED as
 * PYTHONHASHSEED fixes CPython's.  Called by gilvm_runtime_init before any string exists. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "vm/core/object.h"

uint64_t vm_hash_key[2];

/* splitmix64: spreads a small seed over the key's 128 bits. */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void random_key(void)
{
    uint64_t k[2];
    size_t got = 0;
    while (got < sizeof k) {
        ssize_t n = getrandom((char *)k + got, sizeof k - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof k) {       /* no getrandom: time and pid, better than nothing */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)getpid();
        k[0] = splitmix(&x);
        k[1] = splitmix(&x);
    }
    vm_hash_key[0] = k[0];
    vm_hash_key[1] = k[1];
}

static int fixed;
static uint64_t fixed_seed;

void vm_hash_seed_fix(uint64_t seed)
{
    fixed = 1;
    fixed_seed = seed;
}

int vm_hash_seed_init(void)
{
    if (fixed) {
        uint64_t x = fixed_seed;
        vm_hash_key[0] = splitmix(&x);
        vm_hash_key[1] = splitmix(&x);
        return 0;
    }
    const char *env = getenv("GILVM_HASHSEED");
    if (!env || !*env || !strcmp(env, "random")) {
        random_key();
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long seed = strtoull(env, &end, 10);
    if (*end || errno || seed > 4294967295u || *env == '-' || *env == '+') {
        random_key();
        return -1;
    }
    uint64_t x = seed;
    vm_hash_key[0] = splitmix(&x);
    vm_hash_key[1] = splitmix(&x);
    return 0;
}
