/* SPDX-License-Identifier: MIT */
/* The embedding API's values, calls, C functions and errors (gilvm.h): values copied across
 * the API (gilvm_value), globals, gilvm_call, C functions bytecode can call (gilvm_register,
 * through libffi closures), and each host thread's last error (gilvm_error_*). */
#include <ffi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/api/gilvm.h"
#include "vm/api/host.h"
#include "vm/core/output.h"
#include "vm/lib/lib.h"

/* ---- the calling thread's recorded error ---- */

/* Each OS thread's last error, in thread-specific data whose destructor frees it when the
 * thread ends (a thread gilvm started, or a host thread that never cleared it).  It and the
 * strings of owned values are libc's malloc, not the host's allocator: both may outlive the
 * runtime (docs/embedding.md, "Memory"). */
typedef struct {
    char *type, *message, *traceback;
} api_error;

static pthread_key_t error_key;
static pthread_once_t error_once = PTHREAD_ONCE_INIT;

static void error_free(void *p)
{
    api_error *e = p;
    free(e->type);
    free(e->message);
    free(e->traceback);
    free(e);
}

static void error_key_init(void)
{
    if (pthread_key_create(&error_key, error_free))
        RT_FATAL("pthread_key_create failed");
}

/* The calling thread's record; NULL if it has none and `create` is 0 (or out of memory). */
static api_error *error_get(int create)
{
    pthread_once(&error_once, error_key_init);
    api_error *e = pthread_getspecific(error_key);
    if (!e && create) {
        e = calloc(1, sizeof *e);
        if (e && pthread_setspecific(error_key, e)) {
            free(e);
            e = NULL;
        }
    }
    return e;
}

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void gilvm_error_clear(void)
{
    api_error *e = error_get(0);
    if (e) {
        pthread_setspecific(error_key, NULL);
        error_free(e);
    }
}

void vm_api_error_set(const char *type, const char *message, const char *tb)
{
    gilvm_error_clear();
    api_error *e = error_get(1);
    if (!e)
        return;
    e->type = dup(type);
    e->message = dup(message ? message : "");
    e->traceback = dup(tb ? tb : "");
    if (!e->type || !e->message || !e->traceback)
        gilvm_error_clear();
}

void vm_api_error_set_exc(vm_thread *t, value e)
{
    if (e.tag != T_EXC) {
        vm_api_error_set("RuntimeError", "error without an exception", NULL);
        return;
    }
    value msg = vm_to_str(t, e);
    char *tb = vm_format_traceback(t, e);
    vm_api_error_set(AS_EXC(e)->cls->name->data, AS_STR(msg)->data, tb);
    vm_free(tb);
}

const char *gilvm_error_type(void) { api_error *e = error_get(0); return e ? e->type : NULL; }
const char *gilvm_error_message(void) { api_error *e = error_get(0); return e ? e->message : NULL; }
const char *gilvm_error_traceback(void) { api_error *e = error_get(0); return e ? e->traceback : NULL; }

vm_thread *vm_api_caller(const char *api)
{
    rt_thread *cur = rt_thread_current();
    if (cur && rt_main_runtime.initialized)
        return (vm_thread *)cur;
    char msg[256];
    snprintf(msg, sizeof msg, "%s() called by a thread that does not hold the GIL (call "
             "gilvm_gilstate_ensure or gilvm_restore_thread first)", api);
    vm_api_error_set("RuntimeError", msg, NULL);
    vm_printf(VM_STDERR, "gilvm: %s\n", msg);
    return NULL;
}

/* ---- interrupts ---- */

void vm_api_returned(vm_thread *t)
{
    if (t->frame == NULL)       /* the outermost run or call on this thread */
        vm_limits_interrupt_spent(VM_INTERP(t));
}

/* ---- values ---- */

void gilvm_value_clear(gilvm_value *v)
{
    if (v->owned) {
        if (v->type == GILVM_STR || v->type == GILVM_BYTES || v->type == GILVM_OTHER)
            free((void *)v->u.s.data);
        else if (v->type == GILVM_LIST || v->type == GILVM_TUPLE || v->type == GILVM_DICT) {
            size_t n = v->u.seq.len * (v->type == GILVM_DICT ? 2 : 1);
            for (size_t i = 0; i < n; i++)
                gilvm_value_clear(&v->u.seq.items[i]);
            free(v->u.seq.items);
        }
    }
    *v = gilvm_none();
}

/* Copies `len` bytes into an owned value of `type`; -1 if out of memory. */
static int owned_bytes(gilvm_value *out, gilvm_type type, const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (!p)
        return -1;
    memcpy(p, s, len);
    p[len] = 0;
    *out = gilvm_strn(p, len);
    out->type = type;
    out->owned = 1;
    return 0;
}

static int to_host_depth(vm_thread *t, value v, gilvm_value *out, int depth);

/* `n` values as an owned container of `type` (a dict's are its n / 2 pairs); 0, or -1 with
 * an exception set on t (what was copied is freed). */
static int owned_items(vm_thread *t, gilvm_type type, const value *items, size_t n,
                       gilvm_value *out, int depth)
{
    if (depth >= GILVM_MAX_DEPTH)
        return vm_raise(t, EXC(t)->value_error, "a value nested deeper than %d levels cannot "
                        "cross the API", GILVM_MAX_DEPTH);
    gilvm_value *hv = calloc(n ? n : 1, sizeof *hv);
    if (!hv)
        return vm_raise(t, EXC(t)->memory_error, "out of memory copying a value for the host");
    *out = gilvm_list(hv, type == GILVM_DICT ? n / 2 : n);
    out->type = type;
    out->owned = 1;
    for (size_t i = 0; i < n; i++)
        if (to_host_depth(t, items[i], &hv[i], depth + 1)) {
            gilvm_value_clear(out);
            return -1;
        }
    return 0;
}

/* A VM value as an owned gilvm_value (strings and containers copied; other objects as
 * their repr); 0, or -1 with MemoryError or ValueError set on t. */
static int to_host_depth(vm_thread *t, value v, gilvm_value *out, int depth)
{
    *out = gilvm_none();
    switch (v.tag) {
    case T_NONE:
    case T_UNDEF: return 0;
    case T_BOOL: *out = gilvm_bool((int)v.u.i); return 0;
    case T_INT: *out = gilvm_int(v.u.i); return 0;
    case T_FLOAT: *out = gilvm_float(v.u.f); return 0;
    case T_STR:
    case T_BYTES:
        if (owned_bytes(out, v.tag == T_STR ? GILVM_STR : GILVM_BYTES, AS_STR(v)->data,
                        AS_STR(v)->len) == 0)
            return 0;
        break;
    case T_LIST: return owned_items(t, GILVM_LIST, AS_LIST(v)->items, AS_LIST(v)->len, out, depth);
    case T_TUPLE: return owned_items(t, GILVM_TUPLE, AS_TUPLE(v)->items, AS_TUPLE(v)->len, out, depth);
    case T_DICT: {
        /* Its live pairs, in order, copied out first: the copy may not run bytecode, but a
         * list is simplest to walk. */
        vm_dict *d = AS_DICT(v);
        value *kv = vm_malloc((d->len ? d->len : 1) * 2 * sizeof *kv);
        if (!kv)
            return vm_raise(t, EXC(t)->memory_error, "out of memory copying a value for the host");
        size_t n = 0;
        for (size_t i = 0; i < d->used; i++)
            if (d->entries[i].key.tag != T_UNDEF) {
                kv[n++] = d->entries[i].key;
                kv[n++] = d->entries[i].val;
            }
        int rc = owned_items(t, GILVM_DICT, kv, n, out, depth);
        vm_free(kv);
        return rc;
    }
    default: {
        value r = vm_repr(t, v);
        if (owned_bytes(out, GILVM_OTHER, AS_STR(r)->data, AS_STR(r)->len) == 0)
            return 0;
    }
    }
    return vm_raise(t, EXC(t)->memory_error, "out of memory copying a value for the host");
}

static int to_host(vm_thread *t, value v, gilvm_value *out) { return to_host_depth(t, v, out, 0); }

int vm_api_to_host(vm_thread *t, value v, gilvm_value *out)
{
    return to_host(t, v, out);
}

/* A gilvm_value from the host as a VM value; 0, or -1 with TypeError, ValueError or
 * MemoryError set.  The objects it makes are safe until the next poll (none runs here). */
static int from_host_depth(vm_thread *t, const gilvm_value *v, value *out, int depth)
{
    switch (v->type) {
    case GILVM_NONE: *out = V_NONE; return 0;
    case GILVM_BOOL: *out = V_BOOL(v->u.i); return 0;
    case GILVM_INT: *out = V_INT(v->u.i); return 0;
    case GILVM_FLOAT: *out = V_FLOAT(v->u.f); return 0;
    case GILVM_STR:
    case GILVM_BYTES:
        if (!v->u.s.data && v->u.s.len)
            break;
        if (vm_heap_reserve(t, v->u.s.len))
            return -1;
        *out = v->type == GILVM_STR ? vm_str_new(t, v->u.s.data ? v->u.s.data : "", v->u.s.len)
                                    : vm_bytes_new(t, v->u.s.data ? v->u.s.data : "", v->u.s.len);
        return 0;
    case GILVM_LIST:
    case GILVM_TUPLE:
    case GILVM_DICT: {
        size_t n = v->u.seq.len;
        if (!v->u.seq.items && n)
            break;
        if (depth >= GILVM_MAX_DEPTH)
            return vm_raise(t, EXC(t)->value_error, "a value nested deeper than %d levels "
                            "cannot cross the API", GILVM_MAX_DEPTH);
        if (n > ((size_t)1 << 36))
            return vm_raise(t, EXC(t)->memory_error, "cannot allocate %zu items", n);
        if (vm_heap_reserve(t, n * 2 * sizeof(value)))
            return -1;
        if (v->type == GILVM_DICT) {
            value d = vm_dict_new(t), k, x;
            for (size_t i = 0; i < n; i++)
                if (from_host_depth(t, &v->u.seq.items[2 * i], &k, depth + 1) ||
                    from_host_depth(t, &v->u.seq.items[2 * i + 1], &x, depth + 1) ||
                    vm_dict_set(t, AS_DICT(d), k, x))
                    return -1;
            *out = d;
            return 0;
        }
        value l = vm_list_new(t, n);    /* a tuple is made from the list's items */
        for (size_t i = 0; i < n; i++) {
            if (from_host_depth(t, &v->u.seq.items[i], &AS_LIST(l)->items[i], depth + 1))
                return -1;
            AS_LIST(l)->len++;
        }
        *out = v->type == GILVM_LIST ? l : vm_tuple_new(t, n, AS_LIST(l)->items);
        return 0;
    }
    default:
        break;
    }
    return vm_raise(t, EXC(t)->type_error, "a gilvm_value of type %d cannot be passed in",
                    (int)v->type);
}

static int from_host(vm_thread *t, const gilvm_value *v, value *out)
{
    return from_host_depth(t, v, out, 0);
}

/* ---- globals and calls ---- */

int gilvm_set_global(const char *name, const gilvm_value *v)
{
    vm_thread *t = vm_api_caller("gilvm_set_global");
    if (!t)
        return -1;
    value x;
    if (from_host(t, v, &x)) {
        vm_api_error_set_exc(t, t->exc);
        t->exc = V_UNDEF;
        return -1;
    }
    vm_global_set(t, name, x);
    return 0;
}

int gilvm_get_global(const char *name, gilvm_value *out)
{
    *out = gilvm_none();
    vm_thread *t = vm_api_caller("gilvm_get_global");
    if (!t)
        return -1;
    value v = vm_global_get(VM_INTERP(t), name);
    if (v.tag == T_UNDEF)
        vm_raise(t, EXC(t)->name_error, "name '%s' is not defined", name);
    else if (to_host(t, v, out) == 0)
        return 0;
    vm_api_error_set_exc(t, t->exc);
    t->exc = V_UNDEF;
    return -1;
}

int gilvm_call(const char *name, int argc, const gilvm_value *argv, gilvm_value *result)
{
    if (result)
        *result = gilvm_none();
    vm_thread *t = vm_api_caller("gilvm_call");
    if (!t)
        return -1;
    if (argc < 0 || (argc && !argv)) {
        vm_api_error_set("ValueError", "gilvm_call: bad argument count or array", NULL);
        return -1;
    }
    value f = vm_global_get(VM_INTERP(t), name);
    int rc = -1;
    value *args = vm_malloc(sizeof(value) * (size_t)(argc ? argc : 1));
    if (!args) {
        vm_api_error_set("MemoryError", "out of memory", NULL);
        return -1;
    }
    /* The arguments are rooted while the call runs when they fit in the thread's roots: a
     * builtin that waits may run a signal handler, whose polls may collect. */
    int saved_nroots = t->nroots;
    int i = 0;
    if (f.tag == T_UNDEF) {
        vm_raise(t, EXC(t)->name_error, "name '%s' is not defined", name);
        goto fail;
    }
    if (!vm_callable(f)) {
        vm_raise(t, EXC(t)->type_error, "'%s' object is not callable", vm_type_name(f));
        goto fail;
    }
    for (; i < argc; i++)
        if (from_host(t, &argv[i], &args[i]))
            goto fail;
    if (t->nroots + argc + 1 <= (int)(sizeof t->roots / sizeof t->roots[0])) {
        t->roots[t->nroots++] = f;
        for (int k = 0; k < argc; k++)
            t->roots[t->nroots++] = args[k];
    }
    value out;
    int failed = vm_call(t, f, argc, args, &out);
    t->nroots = saved_nroots;
    if (!failed && (!result || to_host(t, out, result) == 0))
        rc = 0;
    vm_api_returned(t);
    if (rc == 0)
        goto done;
fail:
    t->nroots = saved_nroots;
    vm_api_error_set_exc(t, t->exc);
    t->exc = V_UNDEF;
done:
    vm_free(args);
    return rc;
}

/* ---- C functions ---- */

/* One registered C function: its libffi closure is the vm_native_fn bytecode calls, and
 * knows this record (the natives' signature has no room for it). */
typedef struct hostfn {
    struct hostfn *next;
    gilvm_cfunction fn;
    void *data;
    char *name, *sig;
    ffi_closure *closure;
    void *code;
    ffi_cif cif;
    ffi_type *argtypes[4];
} hostfn;

static hostfn *hostfns;         /* every registration of this runtime; freed at finalize */
static _Thread_local int in_cfunction;  /* C functions running on this thread (nested) */

int gilvm_raise(const char *exc_class, const char *fmt, ...)
{
    vm_thread *t = (vm_thread *)rt_thread_current();
    if (!t || !in_cfunction)    /* outside a C function there is nothing to raise into */
        return -1;
    value c = exc_class ? vm_global_get(VM_INTERP(t), exc_class) : V_UNDEF;
    vm_class *cls = c.tag == T_CLASS ? AS_CLASS(c) : EXC(t)->runtime_error;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return vm_raise(t, cls, "%s", buf);
}

/* The body of every C function's native: lends the arguments, calls the host, copies the
 * result back. */
static int host_call(hostfn *h, vm_thread *t, int argc, const value *argv, value *out)
{
    gilvm_value small[8], *hv = argc <= 8 ? small : vm_calloc((size_t)argc, sizeof *hv);
    if (!hv)
        return vm_raise(t, EXC(t)->memory_error, "out of memory");
    int rc = -1, i = 0;
    for (; i < argc; i++) {
        value v = argv[i];
        if (v.tag == T_STR || v.tag == T_BYTES) {
            hv[i] = gilvm_strn(AS_STR(v)->data, AS_STR(v)->len);     /* lent */
            hv[i].type = v.tag == T_STR ? GILVM_STR : GILVM_BYTES;
        } else if (to_host(t, v, &hv[i]))
            goto out;
    }
    gilvm_value res = gilvm_none();
    t->exc = V_UNDEF;
    in_cfunction++;
    int failed = h->fn(h->data, argc, hv, &res);
    in_cfunction--;
    if (failed) {
        if (t->exc.tag != T_EXC)
            vm_raise(t, EXC(t)->runtime_error, "%s() failed without raising", h->name);
    } else if (t->exc.tag == T_EXC) {
        failed = 1;     /* raised, then returned 0: the exception wins, as in CPython */
    } else
        rc = from_host(t, &res, out);
    gilvm_value_clear(&res);
    if (failed)
        rc = -1;
out:
    for (int k = 0; k < i; k++)
        gilvm_value_clear(&hv[k]);
    if (hv != small)
        vm_free(hv);
    return rc;
}

static void host_entry(ffi_cif *cif, void *ret, void **args, void *data)
{
    (void)cif;
    int rc = host_call((hostfn *)data, *(vm_thread **)args[0], *(int *)args[1],
                       *(value **)args[2], *(value **)args[3]);
    *(ffi_sarg *)ret = rc;
}

static void hostfn_free(hostfn *h)
{
    if (h->closure)
        ffi_closure_free(h->closure);
    vm_free(h->name);
    vm_free(h->sig);
    vm_free(h);
}

int gilvm_register(const char *name, int arity, gilvm_cfunction fn, void *data)
{
    vm_thread *t = vm_api_caller("gilvm_register");
    if (!t)
        return -1;
    if (!name || !fn || arity < -1) {
        vm_api_error_set("ValueError", "gilvm_register: bad name, function or arity", NULL);
        return -1;
    }
    hostfn *h = vm_calloc(1, sizeof *h);
    if (!h)
        goto oom;
    h->fn = fn;
    h->data = data;
    h->name = vm_strdup(name);
    size_t n = strlen(name) + 16;
    h->sig = vm_malloc(n);
    if (!h->name || !h->sig)
        goto oom;
    snprintf(h->sig, n, "%s(%s)", name, arity < 0 ? "*args" : "...");
    h->argtypes[0] = &ffi_type_pointer;
    h->argtypes[1] = &ffi_type_sint;
    h->argtypes[2] = &ffi_type_pointer;
    h->argtypes[3] = &ffi_type_pointer;
    h->closure = ffi_closure_alloc(sizeof(ffi_closure), &h->code);
    if (!h->closure || ffi_prep_cif(&h->cif, FFI_DEFAULT_ABI, 4, &ffi_type_sint, h->argtypes) != FFI_OK ||
        ffi_prep_closure_loc(h->closure, &h->cif, host_entry, h, h->code) != FFI_OK)
        goto oom;
    vm_native *nat = (vm_native *)vm_alloc(t, T_NATIVE, sizeof(vm_native));
    nat->name = h->name;
    nat->arity = arity;
    nat->fn = (vm_native_fn)h->code;
    nat->sig = h->sig;
    vm_global_set(t, name, V_OBJ(T_NATIVE, nat));
    h->next = hostfns;
    hostfns = h;
    return 0;
oom:
    if (h)
        hostfn_free(h);
    vm_api_error_set("MemoryError", "gilvm_register: out of memory", NULL);
    return -1;
}

void vm_api_cfunctions_free(void)
{
    while (hostfns) {
        hostfn *h = hostfns;
        hostfns = h->next;
        hostfn_free(h);
    }
}

int vm_api_from_host(vm_thread *t, const gilvm_value *v, value *out)
{
    return from_host(t, v, out);
}
