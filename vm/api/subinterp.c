/* SPDX-License-Identifier: MIT */
/* The embedding API's sub-interpreters and audit hooks (gilvm.h): thin layers over
 * vm/lib/interp.c and vm/lib/audit.c that turn gilvm_values into values and back and
 * exceptions into recorded errors. */
#include <stdlib.h>
#include <string.h>

#include "vm/api/gilvm.h"
#include "vm/api/host.h"
#include "vm/lib/lib.h"

/* Records t's exception for gilvm_error_* and clears it; returns -1. */
static int failed(vm_thread *t)
{
    vm_api_error_set_exc(t, t->exc);
    t->exc = V_UNDEF;
    return -1;
}

long long gilvm_interp_create(const gilvm_interp_config *config)
{
    vm_thread *t = vm_api_caller("gilvm_interp_create");
    if (!t)
        return -1;
    rt_interp_config cfg = RT_INTERP_CONFIG_ISOLATED;
    if (config) {
        cfg.own_gil = !config->shared_gil;
        cfg.allow_threads = !config->no_threads;
        cfg.allow_daemon_threads = config->allow_daemon_threads != 0;
    }
    int64_t id;
    if (vm_interp_create(t, &cfg, 0, &id))
        return failed(t);
    return id;
}

int gilvm_interp_destroy(long long id)
{
    vm_thread *t = vm_api_caller("gilvm_interp_destroy");
    if (!t)
        return -1;
    return vm_interp_destroy(t, id) ? failed(t) : 0;
}

int gilvm_interp_run_string(long long id, const char *name, const char *source)
{
    vm_thread *t = vm_api_caller("gilvm_interp_run_string");
    if (!t)
        return -1;
    return vm_interp_exec(t, id, name, source, strlen(source)) ? failed(t) : 0;
}

/* The host's arguments as a tuple in *args, rooted (t->roots) until the caller drops it
 * (t->nroots--), also after a failure; 0, or -1 with the exception set. */
static int host_args(vm_thread *t, const char *fn, int argc, const gilvm_value *argv,
                     vm_tuple **args)
{
    int n = argc < 0 || argc > 64 ? 0 : argc;
    vm_tuple *a = (vm_tuple *)vm_alloc(t, T_TUPLE, sizeof(vm_tuple) + (size_t)n * sizeof(value));
    a->len = 0;
    t->roots[t->nroots++] = V_OBJ(T_TUPLE, a);
    *args = a;
    if (n != argc)
        return vm_raise(t, EXC(t)->type_error, "%s: at most 64 arguments", fn);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = vm_api_from_host(t, &argv[i], &a->items[i]);
        a->len += rc == 0;
    }
    return rc;
}

int gilvm_interp_call(long long id, const char *name, int argc, const gilvm_value *argv,
                      gilvm_value *result)
{
    if (result)
        *result = gilvm_none();
    vm_thread *t = vm_api_caller("gilvm_interp_call");
    if (!t)
        return -1;
    vm_tuple *args;
    int rc = host_args(t, "gilvm_interp_call", argc, argv, &args);
    value r = V_NONE;
    if (rc == 0)
        rc = vm_interp_call(t, id, name, argc, args->items, &r);
    t->nroots--;
    if (rc == 0 && result)
        rc = vm_api_to_host(t, r, result);
    return rc ? failed(t) : 0;
}

gilvm_thread *gilvm_interp_enter(long long id)
{
    vm_thread *t = vm_api_caller("gilvm_interp_enter");
    if (!t)
        return NULL;
    if (!vm_interp_enter(t, id)) {
        failed(t);
        return NULL;
    }
    return (gilvm_thread *)t;
}

void gilvm_interp_leave(gilvm_thread *prev)
{
    vm_thread *cur = (vm_thread *)rt_thread_current();
    if (cur && prev)
        vm_interp_leave(cur, (vm_thread *)prev);
}

/* ---- audit hooks ---- */

static struct {
    gilvm_audit_hook fn;
    void *data;
} hooks[VM_AUDIT_MAX_C_HOOKS];
static int nhooks;

/* The vm_audit_c_fn of every host hook: the arguments as gilvm_values. */
static int host_hook(void *data, vm_thread *t, const char *event, int argc, const value *argv)
{
    size_t i = (size_t)((uintptr_t)data);
    gilvm_value *hv = vm_calloc(argc > 0 ? (size_t)argc : 1, sizeof *hv);
    if (!hv)
        return vm_raise(t, EXC(t)->memory_error, "out of memory calling an audit hook");
    int n = 0;
    while (n < argc && vm_api_to_host(t, argv[n], &hv[n]) == 0)
        n++;
    int rc = n < argc ? -1 : hooks[i].fn(hooks[i].data, event, argc, hv);
    for (int k = 0; k < n; k++) {
        hv[k].owned = 1;
        gilvm_value_clear(&hv[k]);
    }
    vm_free(hv);
    return rc;
}

int gilvm_audit_hook_add(gilvm_audit_hook fn, void *data)
{
    vm_thread *t = rt_main_runtime.initialized ? (vm_thread *)rt_thread_current() : NULL;
    if (!fn || nhooks >= VM_AUDIT_MAX_C_HOOKS)
        return -1;
    hooks[nhooks].fn = fn;
    hooks[nhooks].data = data;
    if (vm_audit_add_c_hook(t, host_hook, (void *)(uintptr_t)nhooks))
        return -1;
    nhooks++;
    return 0;
}

void vm_api_audit_hooks_clear(void)
{
    vm_audit_clear_c_hooks();
    nhooks = 0;
}

int gilvm_audit(const char *event, int argc, const gilvm_value *argv)
{
    vm_thread *t = vm_api_caller("gilvm_audit");
    if (!t)
        return -1;
    vm_tuple *args;
    int rc = host_args(t, "gilvm_audit", argc, argv, &args);
    if (rc == 0)
        rc = vm_audit(t, event, argc, args->items);
    t->nroots--;
    return rc ? failed(t) : 0;
}
