/* SPDX-License-Identifier: MIT */
/* The VM's one allocation layer: every allocation vm/ makes goes through these functions, to
 * the host's allocator (gilvm_config.allocator) or to libc's; and the reserve that lets an
 * allocation which cannot fail where it is made survive one failure (docs/embedding.md). */
#ifndef VM_MEM_H
#define VM_MEM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

/* A host's allocator, as gilvm.h's gilvm_allocator (same layout): realloc(data, NULL, n)
 * must act as malloc; free is never given NULL; every function must be thread-safe. */
typedef struct {
    void *(*malloc)(void *data, size_t n);
    void *(*realloc)(void *data, void *p, size_t n);
    void (*free)(void *data, void *p);
    void *data;
} vm_allocator;

/* Sends every later vm_malloc/realloc/free to `a` (copied); NULL: libc's.  Only while nothing
 * allocated through the previous allocator is alive (before init, after finalize). */
void vm_mem_set(const vm_allocator *a);

/* The allocator set by vm_mem_set (malloc NULL: libc's); read by the inline functions. */
extern vm_allocator vm_mem_host;

/* malloc(n) through the allocator (n = 0 allocates 1 byte); NULL when it fails.  Inline:
 * the heap's every object comes through here. */
static inline void *vm_malloc(size_t n)
{
    if (n == 0)
        n = 1;
    return vm_mem_host.malloc ? vm_mem_host.malloc(vm_mem_host.data, n) : malloc(n);
}
/* Zeroed n * size bytes; NULL when it fails or n * size overflows. */
void *vm_calloc(size_t n, size_t size);
/* realloc(p, n) through the allocator (p NULL: malloc); NULL when it fails (p kept). */
void *vm_realloc(void *p, size_t n);
/* Frees p (NULL: nothing), allocated by vm_malloc, vm_calloc, vm_realloc or vm_xrealloc. */
static inline void vm_free(void *p)
{
    if (!p)
        return;
    if (vm_mem_host.malloc)
        vm_mem_host.free(vm_mem_host.data, p);
    else
        free(p);
}
/* A copy of the NUL-terminated `s`; NULL when the allocation fails. */
char *vm_strdup(const char *s);

/* realloc(p, n) for an allocation that cannot fail where it is made: when the allocator
 * fails, it gives the reserve back and retries, and vm_mem_reserve_spent() then tells the
 * next eval-loop poll to raise MemoryError.  Fatal (rt_fatal) only if that retry fails too. */
void *vm_xrealloc(void *p, size_t n);

/* vm_xrealloc after the allocator refused realloc(p, n): gives the reserve back, marks it
 * spent and retries; fatal if that fails too. */
void *vm_mem_rescue(void *p, size_t n);

/* The reserve's size. */
#define VM_MEM_RESERVE_SIZE ((size_t)1 << 20)

/* Takes the reserve (VM_MEM_RESERVE_SIZE) if it is not held; 0, or -1 if the allocator refused it. */
int vm_mem_reserve_take(void);
/* Gives the reserve back to the allocator (at finalization). */
void vm_mem_reserve_drop(void);
/* 1 if vm_xrealloc spent the reserve since the last call (which clears it), else 0. */
int vm_mem_reserve_spent(void);
/* Nonzero while the reserve is spent and not yet reported by vm_mem_reserve_spent (read on
 * every allocation, so inline). */
extern _Atomic int vm_mem_spent;
static inline int vm_mem_reserve_pending(void)
{
    return atomic_load_explicit(&vm_mem_spent, memory_order_relaxed);
}

#endif
