/* SPDX-License-Identifier: MIT */
/* Entering bytecode from C: calling a callable (vm_call) and running a module body
 * (vm_run_code).  Called by natives, the poll handler, threads and the embedding API. */
#include <string.h>

#include "vm/core/ops.h"
#include "vm/core/state.h"

int vm_call(vm_thread *t, value f, int argc, const value *argv, value *out)
{
    if (f.tag != T_FUNC)
        return vm_call_other(t, f, argc, argv, out);
    vm_code *code = AS_FUNC(f)->code;
    if ((uint32_t)argc != code->nparams)
        return vm_raise(t, VM_INTERP(t)->exc.type_error,
                        "%s() takes %u positional argument%s but %d %s given", code->name->data,
                        code->nparams, code->nparams == 1 ? "" : "s", argc,
                        argc == 1 ? "was" : "were");
    if (--t->base.c_recursion_remaining < 0) {
        t->base.c_recursion_remaining++;
        return vm_raise(t, VM_INTERP(t)->exc.recursion_error,
                        "maximum recursion depth exceeded in native callback");
    }
    int rc = -1;
    if (vm_frame_push(t, code, argv, (uint32_t)argc))
        rc = vm_eval(t, out);
    t->base.c_recursion_remaining++;
    return rc;
}

int vm_run_code(vm_thread *t, vm_code *code, value *stack_io, uint32_t *depth_io, uint32_t cap)
{
    uint32_t depth = depth_io ? *depth_io : 0;
    if (depth != code->entry_depth)
        return vm_raise(t, VM_INTERP(t)->exc.runtime_error, "module entered with stack depth %u, "
                        "expected %u", depth, code->entry_depth);
    vm_frame *fr = vm_frame_push(t, code, NULL, 0);
    if (!fr)
        return -1;
    if (depth)
        memcpy(fr->sp, stack_io, depth * sizeof(value));
    fr->sp += depth;
    value result;
    if (vm_eval(t, &result)) {
        if (depth_io)
            *depth_io = 0;
        return -1;
    }
    if (t->frame == fr) {       /* HALT leaves the frame for us to read and pop */
        uint32_t n = (uint32_t)(fr->sp - FRAME_STACK(fr));
        if (stack_io && depth_io) {
            if (n > cap)
                n = cap;
            memcpy(stack_io, fr->sp - n, n * sizeof(value));
            *depth_io = n;
        }
        vm_frame_pop(t);
    } else if (depth_io)
        *depth_io = 0;
    return 0;
}
