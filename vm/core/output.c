/* SPDX-License-Identifier: MIT */
/* Where the program's output goes (output.h): stdout and stderr, or the embedder's hook. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "vm/core/mem.h"
#include "vm/core/output.h"

typedef struct hook {
    vm_write_fn fn;
    void *data;
    struct hook *older;         /* every pair ever set, still reachable */
} hook;

/* The hook is replaced whole (a new pair, published with one pointer store); old pairs are
 * kept, not freed, since a writer on another thread may still read one. */
static _Atomic(hook *) current;
static hook none;
static hook *all;
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;

void vm_output_set(vm_write_fn fn, void *data)
{
    hook *h = &none;
    if (fn) {
        h = malloc(sizeof *h);      /* libc's: a hook outlives the runtime (never freed) */
        if (!h)
            return;
        h->fn = fn;
        h->data = data;
        pthread_mutex_lock(&set_lock);
        h->older = all;
        all = h;
        pthread_mutex_unlock(&set_lock);
    }
    atomic_store(&current, h);
}

void vm_write(int stream, const char *text, size_t len)
{
    hook *h = atomic_load(&current);
    if (h && h->fn) {
        h->fn(h->data, stream, text, len);
        return;
    }
    fwrite(text, 1, len, stream == VM_STDERR ? stderr : stdout);
}

void vm_printf(int stream, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof buf) {
        vm_write(stream, buf, (size_t)n);
        return;
    }
    char *big = vm_malloc((size_t)n + 1);
    if (!big) {
        vm_write(stream, buf, sizeof buf - 1);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    vm_write(stream, big, (size_t)n);
    vm_free(big);
}

void vm_output_flush(void)
{
    hook *h = atomic_load(&current);
    if (!h || !h->fn)
        fflush(stdout);
}
