/* Entering bytecode from C (vm_call, vm_run_code) and handling the eval breaker's bits at a
 * poll (vm_handle_pending), in the order of CPython's _Py_HandlePending. */
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

/* Delivers an exception another thread queued with vm_thread_set_async_exc. */
static int take_async_exc(vm_thread *t)
{
    void *p = atomic_exchange(&t->base.async_exc, NULL);
    if (!p)
        return 0;
    return vm_raise_value(t, V_OBJ(T_EXC, p));
}

vm_pending_fn vm_pending_hooks[VM_PENDING_MAX_HOOKS];

int vm_handle_pending(vm_thread *t)
{
    rt_breaker *b = &t->base.eval_breaker;
    uint32_t bits = rt_breaker_load(b);
    /* Stop requests, signals and pending calls are handled by registered hooks, in bit
     * order (EVAL_PLEASE_STOP, SIGNALS_PENDING, CALLS_TO_DO), as _Py_HandlePending. */
    if ((bits & RT_EVAL_PLEASE_STOP) && rt_thread_must_exit(&t->base))
        rt_gil_yield(&t->base);     /* another thread finalizes: the re-take ends this thread */
    for (int i = 0; i < VM_PENDING_MAX_HOOKS; i++)
        if (vm_pending_hooks[i] && vm_pending_hooks[i](t, bits))
            return -1;
    if (bits & RT_GC_SCHEDULED) {
        rt_breaker_clear(b, RT_GC_SCHEDULED);
        vm_gc_collect(t);
    }
    if (bits & RT_GIL_DROP_REQUEST)
        rt_gil_yield(&t->base);
    if (bits & RT_ASYNC_EXCEPTION) {
        rt_breaker_clear(b, RT_ASYNC_EXCEPTION);
        if (take_async_exc(t))
            return -1;
    }
    return 0;
}
