/* SPDX-License-Identifier: MIT */
/* Audit hooks [sys.addaudithook, sys.audit, PySys_AddAuditHook, PEP 578]: per-interpreter
 * bytecode hooks and runtime-wide C hooks (which the embedding API may add before the
 * runtime starts) see named events with their arguments, and abort the operation that
 * raised an event by raising (a C hook: by returning non-zero).  The library raises its
 * events through vm_audit (lib.h); with no hook that costs two loads and a branch. */
#include <pthread.h>

#include "vm/lib/lib.h"
#include "vm/lib/native.h"

/* The C hooks, in the order added; slots are filled before the count that publishes them
 * grows, and never change after. */
static struct {
    vm_audit_c_fn fn;
    void *data;
} c_hooks[VM_AUDIT_MAX_C_HOOKS];
_Atomic int vm_audit_nc;
static pthread_mutex_t c_hooks_mu = PTHREAD_MUTEX_INITIALIZER;

int vm_audit_add_c_hook(vm_thread *t, vm_audit_c_fn fn, void *data)
{
    /* As PySys_AddAuditHook: with the runtime running, the hooks already there see
     * "sys.addaudithook" first, and any of them may refuse the new one. */
    if (t && vm_audit(t, "sys.addaudithook", 0, NULL)) {
        t->exc = V_UNDEF;
        return -1;
    }
    pthread_mutex_lock(&c_hooks_mu);
    int n = atomic_load(&vm_audit_nc), rc = -1;
    if (n < VM_AUDIT_MAX_C_HOOKS) {
        c_hooks[n].fn = fn;
        c_hooks[n].data = data;
        atomic_store(&vm_audit_nc, n + 1);
        rc = 0;
    }
    pthread_mutex_unlock(&c_hooks_mu);
    return rc;
}

void vm_audit_clear_c_hooks(void)
{
    pthread_mutex_lock(&c_hooks_mu);
    atomic_store(&vm_audit_nc, 0);
    pthread_mutex_unlock(&c_hooks_mu);
}

/* The hooks are GC roots of their interpreter. */
static void mark_hooks(vm_interp *in, vm_gc_mark_fn mark, void *g)
{
    mark(g, in->audit_hooks);
}

int vm_audit_run(vm_thread *t, const char *event, int argc, const value *argv)
{
    int nc = atomic_load(&vm_audit_nc);
    for (int i = 0; i < nc; i++)
        if (c_hooks[i].fn(c_hooks[i].data, t, event, argc, argv)) {
            if (t->exc.tag == T_UNDEF)
                vm_raise(t, EXC(t)->runtime_error, "%s: refused by an audit hook", event);
            return -1;
        }
    if (VM_INTERP(t)->audit_hooks.tag != T_LIST)
        return 0;
    value ev[2] = {vm_str_c(t, event), vm_tuple_new(t, (size_t)argc, argv)};
    /* Rooted: a hook may drop the others (a collection may run inside it). */
    if (t->nroots + 2 > (int)(sizeof t->roots / sizeof t->roots[0]))
        return vm_raise(t, EXC(t)->recursion_error, "audit hooks nested too deeply");
    t->roots[t->nroots++] = ev[0];
    t->roots[t->nroots++] = ev[1];
    int rc = 0;
    value hooks = VM_INTERP(t)->audit_hooks;
    /* By index: a hook may add hooks, which see the events that follow. */
    for (size_t i = 0; rc == 0 && hooks.tag == T_LIST && i < AS_LIST(hooks)->len; i++) {
        value r;
        rc = vm_call(t, AS_LIST(hooks)->items[i], 2, ev, &r);
    }
    t->nroots -= 2;
    return rc;
}

/* addaudithook(hook): hook(event, args) is called for every event from now on. */
BUILTIN(addaudithook)
{
    if (vm_want_callable(t, "addaudithook", argv[0]))
        return -1;
    vm_interp *in = VM_INTERP(t);
    /* As CPython: existing hooks see "sys.addaudithook"; a RuntimeError from one of them
     * leaves the new hook out and is swallowed, any other exception propagates. */
    if (vm_audit(t, "sys.addaudithook", 0, NULL)) {
        value e = t->exc;
        if (e.tag == T_EXC && vm_class_is(AS_EXC(e)->cls, in->exc.runtime_error)) {
            t->exc = V_UNDEF;
            *out = V_NONE;
            return 0;
        }
        return -1;
    }
    if (in->audit_hooks.tag != T_LIST)
        in->audit_hooks = vm_list_new(t, 1);
    if (vm_list_append(t, AS_LIST(in->audit_hooks), argv[0]))
        return -1;
    *out = V_NONE;
    return 0;
}

/* audit(event, *args): calls every hook with (event, args) [sys.audit]. */
BUILTIN(audit)
{
    if (argc < 1)
        return vm_raise(t, EXC(t)->type_error, "audit() missing 1 required positional argument: "
                        "'event'");
    if (argv[0].tag != T_STR)
        return vm_raise(t, EXC(t)->type_error, "expected str for argument 'event', not %s",
                        vm_type_name(argv[0]));
    if (vm_audit(t, AS_STR(argv[0])->data, argc - 1, argv + 1))
        return -1;
    *out = V_NONE;
    return 0;
}

void vm_audit_install(vm_thread *t)
{
    vm_gc_add_root_hook(mark_hooks);
    static const vm_native_def natives[] = {
        {"addaudithook", 1, bi_addaudithook, "addaudithook(hook)"},
        {"audit", -1, bi_audit, "audit(event, *args)"},
    };
    VM_DEF_NATIVES(t, natives);
}
