/* SPDX-License-Identifier: MIT */
/* The VM's one allocation layer (mem.h): the host's allocator or libc's, and the reserve
 * that turns a failed allocation which cannot fail where it is made into MemoryError at the
 * next poll. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "vm/core/mem.h"

vm_allocator vm_mem_host;          /* .malloc NULL: libc's */

/* Memory kept for when the allocator fails: given back so that the allocation (and raising
 * MemoryError at the next poll) can still succeed; taken again after a collection.
 * Process-wide, as the allocator is. */
static _Atomic(void *) reserve;
_Atomic int vm_mem_spent;

void vm_mem_set(const vm_allocator *a)
{
    if (a && a->malloc && a->realloc && a->free)
        vm_mem_host = *a;
    else
        memset(&vm_mem_host, 0, sizeof vm_mem_host);
}

void *vm_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = vm_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *vm_realloc(void *p, size_t n)
{
    if (n == 0)
        n = 1;
    if (!vm_mem_host.malloc)
        return p ? realloc(p, n) : malloc(n);
    return p ? vm_mem_host.realloc(vm_mem_host.data, p, n)
             : vm_mem_host.malloc(vm_mem_host.data, n);
}

char *vm_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = vm_malloc(n);
    return p ? memcpy(p, s, n) : NULL;
}

void *vm_mem_rescue(void *p, size_t n)
{
    void *r = atomic_exchange(&reserve, NULL);
    atomic_store(&vm_mem_spent, 1);
    void *q = NULL;
    if (r) {
        vm_free(r);
        q = vm_realloc(p, n);
    }
    if (!q)
        RT_FATAL("out of memory");
    return q;
}

void *vm_xrealloc(void *p, size_t n)
{
    void *q = vm_realloc(p, n);
    return q ? q : vm_mem_rescue(p, n);
}

int vm_mem_reserve_take(void)
{
    if (atomic_load(&reserve))
        return 0;
    void *r = vm_malloc(VM_MEM_RESERVE_SIZE);
    if (!r)
        return -1;
    void *expected = NULL;
    if (!atomic_compare_exchange_strong(&reserve, &expected, r))
        vm_free(r);
    return 0;
}

void vm_mem_reserve_drop(void)
{
    vm_free(atomic_exchange(&reserve, NULL));
    atomic_store(&vm_mem_spent, 0);
}

int vm_mem_reserve_spent(void)
{
    return atomic_exchange(&vm_mem_spent, 0);
}

