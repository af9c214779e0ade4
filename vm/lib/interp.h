/* SPDX-License-Identifier: MIT */
/* Sub-interpreters' shared parts inside vm/lib/: shareable data (values copied between
 * interpreters, outside every heap) and cross-interpreter queues (xiqueue.c), used by
 * interp.c to pass arguments, results and queues into and out of other interpreters. */
#ifndef VM_INTERP_H
#define VM_INTERP_H

#include "vm/core/state.h"

typedef struct vm_xiq vm_xiq;

/* A shareable value copied out of a heap [_PyXIData_t]: None, bool, int, float, str,
 * bytes, a tuple of shareable values, or a cross-interpreter queue (a reference to it).
 * tag is the value tag; str/bytes own `len` bytes at p (NUL-terminated), a tuple owns `len`
 * vm_xidata at p, a queue holds one reference on q. */
typedef struct vm_xidata {
    int tag;
    size_t len;
    union {
        int64_t i;
        double f;
        void *p;
        vm_xiq *q;
    } u;
} vm_xidata;

/* Copies `v` into *out (malloc'd, no heap); 0, or -1 with NotShareableError naming the type
 * of what cannot be shared (*out is then empty). */
int vm_xi_get(vm_thread *t, value v, vm_xidata *out);

/* Makes a value of t's interpreter from *d (a new str, tuple, queue handle...). */
value vm_xi_new(vm_thread *t, const vm_xidata *d);

/* Frees what *d owns (drops a queue reference) and makes it None; any thread, no GIL. */
void vm_xi_clear(vm_xidata *d);

/* After fork, in the child: re-creates the wait queue of the queue handle `o` holds and
 * forgets the queue's ends (vm_xiq_after_fork_end then counts the child's). */
void vm_xiq_after_fork(vm_obj *o);

/* After fork, in the child, after every vm_xiq_after_fork: counts the handle `o` of the
 * main interpreter `in` as an end of its queue again. */
void vm_xiq_after_fork_end(vm_obj *o, vm_interp *in);

/* An id reference of interpreter `id` was dropped where it cannot be destroyed (a
 * collector's free hook, any interpreter's GIL): if it requires id references, has none
 * left and is idle when the main thread next polls (a pending call), destroys it then. */
void vm_interp_id_released(int64_t id);

#endif
