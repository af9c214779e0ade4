/* SPDX-License-Identifier: MIT */
/* The helpers of vm/lib/native.h: installing natives and checking their arguments. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "vm/lib/native.h"

int vm_lib_natives_off;

void vm_def_natives(vm_thread *t, const vm_native_def *defs, size_t n)
{
    if (vm_lib_natives_off)
        return;
    for (size_t i = 0; i < n; i++) {
        vm_native *nat = (vm_native *)vm_alloc(t, T_NATIVE, sizeof(vm_native));
        nat->name = defs[i].name;
        nat->arity = defs[i].arity;
        nat->fn = defs[i].fn;
        nat->sig = defs[i].sig;
        vm_global_set(t, defs[i].name, V_OBJ(T_NATIVE, nat));
    }
}

void vm_native_set_fast(vm_thread *t, const char *name, vm_native_fast fast)
{
    value v = vm_global_get(VM_INTERP(t), name);
    if (v.tag == T_NATIVE)
        AS_NATIVE(v)->fast = fast;
}

int vm_type_err(vm_thread *t, const char *fn, const char *want, value got)
{
    return vm_raise(t, EXC(t)->type_error, "%s() argument must be %s, not '%s'", fn, want,
                    vm_type_name(got));
}

int vm_want_int(vm_thread *t, const char *fn, value v, int64_t *out)
{
    if (v.tag != T_INT && v.tag != T_BOOL)
        return vm_type_err(t, fn, "int", v);
    *out = v.u.i;
    return 0;
}

int vm_want_callable(vm_thread *t, const char *fn, value f)
{
    return vm_callable(f) ? 0 : vm_type_err(t, fn, "callable", f);
}

int vm_want_fd(vm_thread *t, const char *fn, value v, int *fd)
{
    int64_t n = 0;
    if (vm_want_int(t, fn, v, &n))
        return -1;
    if (n < 0 || n > INT32_MAX)
        return vm_os_error(t, EBADF);
    *fd = (int)n;
    return 0;
}

int vm_want_seconds(vm_thread *t, const char *fn, const char *what, const char *negative,
                    value v, double *out)
{
    if (v.tag == T_FLOAT)
        *out = v.u.f;
    else if (v.tag == T_INT || v.tag == T_BOOL)
        *out = (double)v.u.i;
    else
        return vm_raise(t, EXC(t)->type_error, "%s() %s must be a number, not '%s'", fn, what,
                        vm_type_name(v));
    if (!(*out >= 0))
        return vm_raise(t, EXC(t)->value_error, "%s", negative);
    return 0;
}

int vm_os_error(vm_thread *t, int err)
{
    return vm_raise(t, EXC(t)->os_error, "[Errno %d] %s", err, strerror(err));
}
