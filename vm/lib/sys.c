/* SPDX-License-Identifier: MIT */
/* The builtins about the program and the VM itself [sys, gc]: program arguments, exit, the
 * recursion limit, the switch interval, the collector. */
#include <inttypes.h>

#include "vm/lib/lib.h"
#include "vm/lib/native.h"

BUILTIN(argv_)
{
    value src = VM_INTERP(t)->argv;
    *out = vm_list_new(t, AS_LIST(src)->len);
    vm_values_copy(AS_LIST(*out)->items, AS_LIST(src)->items, AS_LIST(src)->len);
    AS_LIST(*out)->len = AS_LIST(src)->len;
    return 0;
}

BUILTIN(exit)
{
    value code = argc ? argv[0] : V_NONE;
    return vm_raise_value(t, vm_exc_new(t, EXC(t)->system_exit, code));
}

BUILTIN(getrecursionlimit)
{
    *out = V_INT(t->base.interp->recursion_limit);
    return 0;
}

BUILTIN(setrecursionlimit)
{
    int64_t n = 0;
    if (vm_want_int(t, "setrecursionlimit", argv[0], &n))
        return -1;
    if (n < 1)
        return vm_raise(t, EXC(t)->value_error, "recursion limit must be greater or equal than 1");
    if (n > 10000000)
        return vm_raise(t, EXC(t)->value_error, "recursion limit too large");
    rt_interp *in = t->base.interp;
    int used = t->frame ? (int)t->frame->depth : 0;
    if (n <= used)
        return vm_raise(t, EXC(t)->recursion_error,
                        "cannot set the recursion limit to %" PRId64 " at the recursion depth %d: "
                        "the limit is too low", n, used);
    /* Every thread of the interpreter gets the new limit; a thread already deeper than it
     * gets RecursionError at its next call, as in CPython. */
    for (rt_thread *th = in->threads; th; th = th->next)
        th->recursion_limit = (int)n;
    in->recursion_limit = (int)n;
    *out = V_NONE;
    return 0;
}

BUILTIN(gc_collect)
{
    rt_breaker_set(&t->base.eval_breaker, RT_GC_SCHEDULED);
    *out = V_NONE;
    return 0;
}

BUILTIN(gc_count)
{
    *out = V_INT((int64_t)VM_INTERP(t)->ncollections);
    return 0;
}

BUILTIN(getswitchinterval)
{
    *out = V_FLOAT((double)rt_interp_switch_interval(t->base.interp) / 1e6);
    return 0;
}

BUILTIN(setswitchinterval)
{
    value v = argv[0];
    if (v.tag != T_INT && v.tag != T_FLOAT && v.tag != T_BOOL)
        return vm_raise(t, EXC(t)->type_error, "must be real number, not %s", vm_type_name(v));
    double s = v.tag == T_FLOAT ? v.u.f : (double)v.u.i;
    if (!(s > 0))
        return vm_raise(t, EXC(t)->value_error, "switch interval must be strictly positive");
    double us = s * 1e6;
    if (us > 1e12)
        us = 1e12;
    rt_interp_set_switch_interval(t->base.interp, us < 1 ? 1 : (uint64_t)(us + 0.5));
    *out = V_NONE;
    return 0;
}

void vm_sys_install(vm_thread *t)
{
    static const vm_native_def natives[] = {
        {"argv", 0, bi_argv_, "argv()"},
        {"exit", -1, bi_exit, "exit(code=None)"},
        {"getrecursionlimit", 0, bi_getrecursionlimit, "getrecursionlimit()"},
        {"setrecursionlimit", 1, bi_setrecursionlimit, "setrecursionlimit(n)"},
        {"getswitchinterval", 0, bi_getswitchinterval, "getswitchinterval()"},
        {"setswitchinterval", 1, bi_setswitchinterval, "setswitchinterval(secs)"},
        {"gc_collect", 0, bi_gc_collect, "gc_collect()"},
        {"gc_count", 0, bi_gc_count, "gc_count()"},
    };
    VM_DEF_NATIVES(t, natives);
}
