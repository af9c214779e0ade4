/* SPDX-License-Identifier: MIT */
/* The VM's part of interpreter and thread states: setting up a fresh interpreter (exception
 * classes, argv) and releasing VM memory when the runtime deletes a state. */
#include <stdlib.h>

#include "vm/core/state.h"

static void thread_clear(rt_thread *rt)
{
    vm_thread *t = (vm_thread *)rt;
    vm_frames_free(t);
}

static void interp_clear(rt_interp *rin)
{
    vm_interp *in = (vm_interp *)rin;
    vm_heap_free(in);
    vm_globals_free(&in->globals);
}

const rt_hooks vm_rt_hooks = {.thread_clear = thread_clear, .interp_clear = interp_clear};

static vm_class *new_class(vm_thread *t, const char *name, vm_class *base)
{
    vm_class *c = (vm_class *)vm_alloc(t, T_CLASS, sizeof(vm_class));
    c->name = AS_STR(vm_str_c(t, name));
    c->base = base;
    vm_global_set(t, name, V_OBJ(T_CLASS, c));
    return c;
}

void vm_interp_setup(vm_thread *t)
{
    vm_interp *in = VM_INTERP(t);
    in->threshold = 4u << 20;
    /* Bases come before derived classes in the table; the root names itself as its base,
     * which is still NULL when it is created. */
#define X(field, name, base) in->exc.field = new_class(t, name, in->exc.base);
    VM_EXC_CLASSES(X)
#undef X
    in->argv = vm_list_new(t, 0);
    vm_heap_check(t);               /* takes the malloc reserve (gc.c) if nobody has yet */
}
