/* SPDX-License-Identifier: MIT */
/* Sub-interpreters in bytecode [Modules/_interpretersmodule.c, Python/pystate.c]: creating
 * isolated interpreters, running code in them, destroying them, their ids and id
 * references; and the steps of finalization that join and destroy them.
 *
 * Notes
 * -----
 * Running code in interpreter B from a thread of A is CPython's thread-state swap: the
 * caller gets a new thread state in B (whence RT_WHENCE_EXEC), detaches from A (releasing
 * A's GIL), attaches to B (taking B's), runs, deletes that state holding B's GIL and
 * re-attaches to A.  Nothing crosses but shareable data (interp.h): arguments are copied
 * out of A's heap before the swap and made in B's after it, the result likewise the other
 * way, and an uncaught exception comes back as its type name and message, raised in A as
 * InterpreterError.  While detached, the caller sits at a safe point with its arguments on
 * its value stack, as in any blocking native.
 *
 * An interpreter is "running" while such a swapped-in state exists (sub.running, under
 * reg_mu); it cannot be destroyed then, nor while it has thread states of its own
 * (threads it started).  reg_mu is never held while taking a GIL: a creator of a legacy
 * interpreter takes the main GIL, whose holder may be waiting for reg_mu.
 *
 * Id references [_PyInterpreterState_IDIncref/IDDecref, requires_idref]: an interpreter
 * created with "reqrefs" is destroyed when the last reference (interp_incref) is dropped
 * (interp_decref), or, if it is running then, when its last run ends; queue ends hold
 * references too (xiqueue.c), and drop them where nothing may be destroyed: then
 * vm_interp_id_released destroys it at the main thread's next poll. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sched.h"
#include "vm/lib/interp.h"
#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/process.h"

/* Guards sub.running and the decision to destroy an interpreter. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
/* Serializes vm_lib_install of new interpreters (it writes process-wide tables). */
static pthread_mutex_t install_mu = PTHREAD_MUTEX_INITIALIZER;

static vm_interp_loader_fn loader;

/* The live sub-interpreters, oldest first; under reg_mu. */
static vm_interp **subs;
static size_t nsubs, subs_cap;

/* Under reg_mu: interpreter `id` (0: main) if it exists and is not being destroyed. */
static vm_interp *find(int64_t id)
{
    if (id == 0)
        return (vm_interp *)rt_interp_main();
    for (size_t i = 0; i < nsubs; i++)
        if (subs[i]->base.id == id)
            return subs[i]->sub.destroyed ? NULL : subs[i];
    return NULL;
}

void vm_interp_set_loader(vm_interp_loader_fn fn)
{
    loader = fn;
}

/* What a run in another interpreter reports back: its result, or its uncaught exception
 * as type name and message (malloc'd). */
typedef struct {
    vm_xidata result;
    char *exc_type, *exc_msg;
    int sigint;                 /* the run was the main thread's stand-in and took a SIGINT */
} xi_outcome;

static char *dup_bytes(const char *s, size_t n)
{
    char *p = vm_xrealloc(NULL, n + 1);        /* no error path: the reserve (mem.h) */
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* Takes t's exception into `o` as type name and message. */
static void capture_exc(vm_thread *t, xi_outcome *o)
{
    value e = t->exc;
    t->exc = V_UNDEF;
    if (e.tag != T_EXC) {
        o->exc_type = dup_bytes("SystemError", 11);
        o->exc_msg = dup_bytes("", 0);
        return;
    }
    vm_exc *x = AS_EXC(e);
    o->exc_type = dup_bytes(x->cls->name->data, x->cls->name->len);
    value m = x->arg.tag == T_NONE ? V_UNDEF : vm_to_str(t, x->arg);
    o->exc_msg = m.tag == T_STR ? dup_bytes(AS_STR(m)->data, AS_STR(m)->len) : dup_bytes("", 0);
}

/* Raises, in the caller, the failure the run in interpreter `id` reported. */
static int raise_outcome(vm_thread *t, int64_t id, xi_outcome *o)
{
    /* Ctrl-C in a run of the main thread: KeyboardInterrupt here too, as its handler would. */
    int rc = o->sigint && strcmp(o->exc_type, "KeyboardInterrupt") == 0
        ? vm_raise_value(t, vm_exc_new(t, EXC(t)->keyboard_interrupt, V_NONE))
        : vm_raise(t, EXC(t)->interpreter_error, "interpreter %lld raised %s%s%s",
                   (long long)id, o->exc_type, o->exc_msg[0] ? ": " : "", o->exc_msg);
    vm_free(o->exc_type);
    vm_free(o->exc_msg);
    o->exc_type = o->exc_msg = NULL;
    return rc;
}

/* Under reg_mu: the interpreter `id`, pinned (running), or NULL with an error raised. */
static vm_interp *pin_locked(vm_thread *t, int64_t id)
{
    vm_interp *in = find(id);
    if (in == NULL) {
        vm_raise(t, EXC(t)->interpreter_error, "unrecognized interpreter ID %lld", (long long)id);
        return NULL;
    }
    if (atomic_load(&in->base.finalizing) && !in->sub.joining) {
        vm_raise(t, EXC(t)->interpreter_error, "interpreter %lld is shutting down", (long long)id);
        return NULL;
    }
    in->sub.running++;
    return in;
}

static vm_interp *pin(vm_thread *t, int64_t id)
{
    pthread_mutex_lock(&reg_mu);
    vm_interp *in = pin_locked(t, id);
    pthread_mutex_unlock(&reg_mu);
    return in;
}

static void destroy(vm_thread *t, vm_interp *in);
static void drop_pending(vm_interp *in);

/* Under reg_mu: 1 if `in` may be destroyed now (not running, no thread states). */
static int idle(vm_interp *in)
{
    return in->sub.running == 0 && !rt_interp_has_threads(&in->base);
}

static void unpin(vm_thread *t, vm_interp *in)
{
    pthread_mutex_lock(&reg_mu);
    in->sub.running--;
    int reap = in->sub.requires_idref && atomic_load(&in->base.id_refcount) == 0 && idle(in) &&
               !atomic_load(&in->base.finalizing);
    if (reap)
        destroy(t, in);
    pthread_mutex_unlock(&reg_mu);
}

/* A new thread state of `in` (whence `whence`), bound to the calling OS thread, detached;
 * NULL if memory runs out. */
static vm_thread *new_state(vm_interp *in, int whence)
{
    vm_thread *nt = (vm_thread *)rt_thread_new(&in->base, whence);
    if (!nt)
        return NULL;
    nt->exc = V_UNDEF;
    nt->handled = V_NONE;
    nt->self = V_NONE;
    rt_thread_bind(&nt->base);
    return nt;
}

/* Runs body(nt, arg) on a new thread state `nt` of `in` (pinned) on the calling OS thread,
 * then comes back to `t`.  body returns 0 or -1 with nt's exception set, which goes into
 * o->exc_*. */
/* 1 if `t` runs on the main OS thread for the main thread: the main thread's state or its
 * stand-in (runtime/signals.c), whose successor in another interpreter stands in next. */
static int stands_in(vm_thread *t)
{
    return rt_signals_can_handle(&t->base) || rt_signals_is_standin(&t->base);
}

static void run_in(vm_thread *t, vm_interp *in, int (*body)(vm_thread *nt, void *arg),
                   void *arg, xi_outcome *o)
{
    vm_thread *nt = new_state(in, RT_WHENCE_EXEC);
    if (!nt) {
        o->exc_type = dup_bytes("MemoryError", 11);
        o->exc_msg = dup_bytes("can't allocate a thread state", 29);
        return;
    }
    int stand = stands_in(t);
    uint64_t sigints = rt_signal_count(SIGINT);
    rt_thread *prev = stand ? rt_signals_set_standin(&nt->base) : NULL;
    rt_thread_swap(&nt->base);
    if (body(nt, arg)) {
        capture_exc(nt, o);
        o->sigint = stand && rt_signal_count(SIGINT) != sigints;
    }
    nt->exc = V_UNDEF;
    if (stand)
        rt_signals_set_standin(prev);
    rt_thread_delete_current(&nt->base);    /* unlinked holding in's GIL, which it releases */
    rt_thread_attach(&t->base);
}

vm_thread *vm_interp_enter(vm_thread *t, int64_t id)
{
    vm_interp *in = pin(t, id);
    if (!in)
        return NULL;
    vm_thread *nt = new_state(in, RT_WHENCE_EXEC);
    if (!nt) {
        unpin(t, in);
        vm_raise(t, EXC(t)->memory_error, "can't allocate a thread state");
        return NULL;
    }
    if (stands_in(t))
        rt_signals_set_standin(&nt->base);
    rt_thread_swap(&nt->base);
    return nt;
}

void vm_interp_leave(vm_thread *nt, vm_thread *back)
{
    vm_interp *in = VM_INTERP(nt);
    nt->exc = V_UNDEF;
    if (rt_signals_is_standin(&nt->base))
        rt_signals_set_standin(rt_signals_can_handle(&back->base) ? NULL : &back->base);
    rt_thread_delete_current(&nt->base);
    rt_thread_attach(&back->base);
    unpin(back, in);
}

/* ---- creating ---- */

static unsigned main_exclude;

void vm_interp_note_main_exclude(unsigned exclude)
{
    main_exclude = exclude;
}

/* Reads interp_create's config argument into *cfg and *reqrefs. */
static int parse_config(vm_thread *t, value c, rt_interp_config *cfg, int *reqrefs)
{
    *cfg = RT_INTERP_CONFIG_ISOLATED;
    *reqrefs = 0;
    if (c.tag == T_NONE)
        return 0;
    if (c.tag == T_STR) {
        if (strcmp(AS_STR(c)->data, "isolated") == 0)
            return 0;
        if (strcmp(AS_STR(c)->data, "legacy") == 0) {
            *cfg = RT_INTERP_CONFIG_LEGACY;
            return 0;
        }
        return vm_raise(t, EXC(t)->value_error, "interp_create(): unsupported config name '%s'",
                        AS_STR(c)->data);
    }
    if (c.tag != T_DICT)
        return vm_type_err(t, "interp_create", "None, a str or a dict", c);
    vm_dict *d = AS_DICT(c);
    for (size_t i = 0; i < d->used; i++) {
        vm_dict_entry *e = &d->entries[i];
        if (e->key.tag == T_UNDEF)
            continue;
        const char *k = e->key.tag == T_STR ? AS_STR(e->key)->data : "";
        int on = vm_truthy(e->val);
        if (strcmp(k, "own_gil") == 0)
            cfg->own_gil = on;
        else if (strcmp(k, "allow_threads") == 0)
            cfg->allow_threads = on;
        else if (strcmp(k, "allow_daemon_threads") == 0)
            cfg->allow_daemon_threads = on;
        else if (strcmp(k, "reqrefs") == 0)
            *reqrefs = on;
        else
            return vm_raise(t, EXC(t)->value_error, "interp_create(): unknown config key %s",
                            AS_STR(vm_repr(t, e->key))->data);
    }
    return 0;
}

int vm_interp_create(vm_thread *t, const rt_interp_config *config, int reqrefs, int64_t *id)
{
    rt_interp_config cfg = *config;
    if (rt_main_runtime.finalizing || atomic_load(&t->base.interp->finalizing))
        return vm_raise(t, EXC(t)->interpreter_error,
                        "can't create an interpreter at interpreter shutdown");
    if (vm_audit(t, "interpreters.create", 0, NULL))
        return -1;
    vm_interp *in = (vm_interp *)rt_interp_new(&cfg, sizeof(vm_interp), sizeof(vm_thread));
    if (!in)
        return vm_raise(t, EXC(t)->memory_error, "can't allocate an interpreter");
    in->sub.requires_idref = reqrefs;
    if (reqrefs)
        rt_interp_id_incref(&in->base);     /* the creator's reference [_interpreters.create] */
    in->sub.running = 1;            /* nobody may destroy it before it is set up */
    in->base.recursion_limit = t->base.interp->recursion_limit;
    vm_thread *nt = (vm_thread *)rt_thread_new(&in->base, RT_WHENCE_INIT);
    if (!nt) {
        rt_interp_delete(&in->base);        /* nothing of it is set up yet */
        return vm_raise(t, EXC(t)->memory_error, "can't allocate an interpreter");
    }
    nt->exc = V_UNDEF;
    nt->handled = V_NONE;
    nt->self = V_NONE;
    /* Set up through `nt` without attaching it: no other thread can reach the new heap yet,
     * so its GIL need not be taken (creation stays cheap: bench/interp_create.gasm). */
    pthread_mutex_lock(&install_mu);
    vm_interp_setup(nt);
    in->ffi_disabled = VM_INTERP(t)->ffi_disabled;
    vm_lib_install(nt, main_exclude);
    pthread_mutex_unlock(&install_mu);
    rt_thread_delete(&nt->base);
    pthread_mutex_lock(&reg_mu);
    in->sub.running = 0;
    if (nsubs == subs_cap) {
        subs_cap = subs_cap ? subs_cap * 2 : 8;
        subs = vm_xrealloc(subs, subs_cap * sizeof *subs);     /* no error path */
    }
    subs[nsubs++] = in;
    pthread_mutex_unlock(&reg_mu);
    *id = in->base.id;
    return 0;
}

BUILTIN(interp_create)
{
    rt_interp_config cfg;
    int reqrefs;
    int64_t id;
    if (argc > 1)
        return vm_raise(t, EXC(t)->type_error, "interp_create expected at most 1 argument, got %d",
                        argc);
    if (parse_config(t, argc ? argv[0] : V_NONE, &cfg, &reqrefs) ||
        vm_interp_create(t, &cfg, reqrefs, &id))
        return -1;
    rt_sched_yield(&t->base, "interp_create");
    *out = V_INT(id);
    return 0;
}

/* ---- destroying ---- */

/* Under reg_mu, `in` idle: releases it [Py_EndInterpreter]. */
static void destroy(vm_thread *t, vm_interp *in)
{
    in->sub.destroyed = 1;
    /* A thread of `in` that has just finished may still be deleting its state (threading.c,
     * nexiting), which touches the interpreter. */
    pthread_mutex_lock(&vm_proc.mu);
    while (vm_proc.nexiting > 0)
        pthread_cond_wait(&vm_proc.quiet, &vm_proc.mu);
    pthread_mutex_unlock(&vm_proc.mu);
    (void)t;
    vm_pcalls_fini(in);
    drop_pending(in);
    for (size_t i = 0; i < nsubs; i++)
        if (subs[i] == in) {
            memmove(subs + i, subs + i + 1, (nsubs - i - 1) * sizeof *subs);
            nsubs--;
            break;
        }
    rt_interp_delete(&in->base);
}

static int want_id(vm_thread *t, const char *fn, value v, int64_t *id)
{
    return vm_want_int(t, fn, v, id);
}

int vm_interp_destroy(vm_thread *t, int64_t id)
{
    if (id == 0)
        return vm_raise(t, EXC(t)->interpreter_error, "cannot destroy the main interpreter");
    if (id == t->base.interp->id)
        return vm_raise(t, EXC(t)->interpreter_error, "cannot destroy the current interpreter");
    value ev = V_INT(id);
    if (vm_audit(t, "interpreters.destroy", 1, &ev))
        return -1;
    pthread_mutex_lock(&reg_mu);
    vm_interp *in = find(id);
    int rc = 0;
    if (in == NULL)
        rc = vm_raise(t, EXC(t)->interpreter_error, "unrecognized interpreter ID %lld", (long long)id);
    else if (in->sub.running)
        rc = vm_raise(t, EXC(t)->interpreter_error, "interpreter %lld is running", (long long)id);
    else if (!idle(in))
        rc = vm_raise(t, EXC(t)->interpreter_error, "interpreter %lld has live threads",
                      (long long)id);
    else
        destroy(t, in);
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

BUILTIN(interp_destroy)
{
    int64_t id;
    if (want_id(t, "interp_destroy", argv[0], &id))
        return -1;
    rt_sched_yield(&t->base, "interp_destroy");
    *out = V_NONE;
    return vm_interp_destroy(t, id);
}

/* ---- id references ---- */

/* The pending call of vm_interp_id_released: destroys interpreter `id` if it is still
 * without references and idle. */
static int reap_released(void *arg)
{
    int64_t id = (int64_t)(intptr_t)arg;
    pthread_mutex_lock(&reg_mu);
    vm_interp *in = id ? find(id) : NULL;
    if (in && in->sub.requires_idref && atomic_load(&in->base.id_refcount) <= 0 && idle(in) &&
        !atomic_load(&in->base.finalizing))
        destroy(NULL, in);
    pthread_mutex_unlock(&reg_mu);
    return 0;
}

void vm_interp_id_released(int64_t id)
{
    if (id != 0)
        rt_pending_add_main(reap_released, (void *)(intptr_t)id);   /* full: exit reaps it */
}

BUILTIN(interp_incref)
{
    int64_t id;
    if (want_id(t, "interp_incref", argv[0], &id))
        return -1;
    vm_interp *in = pin(t, id);
    if (!in)
        return -1;
    rt_interp_id_incref(&in->base);
    unpin(t, in);
    *out = V_NONE;
    return 0;
}

BUILTIN(interp_decref)
{
    int64_t id;
    if (want_id(t, "interp_decref", argv[0], &id))
        return -1;
    vm_interp *in = pin(t, id);
    if (!in)
        return -1;
    if (atomic_load(&in->base.id_refcount) <= 0) {
        unpin(t, in);
        return vm_raise(t, EXC(t)->interpreter_error, "interpreter %lld has no id references",
                        (long long)id);
    }
    rt_interp_id_decref(&in->base);
    unpin(t, in);                   /* the last reference of a reqrefs one destroys it */
    *out = V_NONE;
    return 0;
}

/* ---- running code in an interpreter ---- */

typedef struct {
    const char *name;               /* function or global name, file path, module name */
    const char *src;                /* source text, or NULL */
    size_t len;
    vm_xidata args;                 /* a tuple */
    int want_result;
    xi_outcome out;
} xi_job;

static int call_body(vm_thread *nt, void *arg)
{
    xi_job *j = arg;
    value args = vm_xi_new(nt, &j->args);
    vm_xi_clear(&j->args);
    value f = vm_global_get(VM_INTERP(nt), j->name);
    if (f.tag == T_UNDEF)
        return vm_raise(nt, EXC(nt)->name_error, "name '%s' is not defined", j->name);
    if (!vm_callable(f))
        return vm_raise(nt, EXC(nt)->type_error, "'%s' object is not callable", vm_type_name(f));
    nt->roots[nt->nroots++] = args;
    value r;
    int rc = vm_call(nt, f, (int)AS_TUPLE(args)->len, AS_TUPLE(args)->items, &r);
    nt->nroots--;
    if (rc)
        return -1;
    return vm_xi_get(nt, r, &j->out.result);
}

static int load_body(vm_thread *nt, void *arg)
{
    xi_job *j = arg;
    char err[1024];
    const char *type = NULL;
    if (!loader)
        return vm_raise(nt, EXC(nt)->runtime_error, "no loader: the embedding API is not set up");
    int rc = loader(nt, j->name, j->src, j->len, err, sizeof err, &type);
    if (rc == -2) {                 /* did not load: reported as its own type name */
        j->out.exc_type = dup_bytes(type, strlen(type));
        j->out.exc_msg = dup_bytes(err, strlen(err));
        return 0;
    }
    return rc;
}

static int set_body(vm_thread *nt, void *arg)
{
    xi_job *j = arg;
    value v = vm_xi_new(nt, &j->args);
    vm_xi_clear(&j->args);
    nt->roots[nt->nroots++] = v;
    value *cell = vm_global_cell(VM_INTERP(nt), AS_STR(vm_str_c(nt, j->name)));
    nt->nroots--;
    *cell = v;
    return 0;
}

/* Runs job `j` in interpreter `id` with `body` on the calling thread; the result (if
 * wanted) in *out, or InterpreterError. */
static int run_job(vm_thread *t, int64_t id, int (*body)(vm_thread *, void *), xi_job *j,
                   value *out)
{
    vm_interp *in = pin(t, id);
    if (!in) {
        vm_xi_clear(&j->args);
        return -1;
    }
    rt_sched_yield(&t->base, "interp_run");
    run_in(t, in, body, j, &j->out);
    vm_xi_clear(&j->args);
    unpin(t, in);
    if (j->out.exc_type) {
        vm_xi_clear(&j->out.result);
        return raise_outcome(t, id, &j->out);
    }
    *out = j->want_result ? vm_xi_new(t, &j->out.result) : V_NONE;
    vm_xi_clear(&j->out.result);
    return 0;
}

static int want_str(vm_thread *t, const char *fn, value v)
{
    return v.tag == T_STR ? 0 : vm_type_err(t, fn, "str", v);
}

/* Copies argv[from..argc) into j->args as a shareable tuple. */
static int pack_args(vm_thread *t, int argc, value *argv, int from, xi_job *j)
{
    value tu = vm_tuple_new(t, argc > from ? (size_t)(argc - from) : 0, argv + from);
    return vm_xi_get(t, tu, &j->args);
}

int vm_interp_call(vm_thread *t, int64_t id, const char *name, int argc, value *argv,
                   value *out)
{
    xi_job j = {.name = name, .want_result = 1};
    if (pack_args(t, argc, argv, 0, &j))
        return -1;
    return run_job(t, id, call_body, &j, out);
}

int vm_interp_exec(vm_thread *t, int64_t id, const char *name, const char *src, size_t len)
{
    value ev[2] = {V_INT(id), V_NONE};
    if (vm_audit(t, "interpreters.exec", 2, ev))
        return -1;
    xi_job j = {.name = name, .src = src, .len = len};
    value out;
    return run_job(t, id, load_body, &j, &out);
}

BUILTIN(interp_call)
{
    int64_t id;
    if (argc < 2)
        return vm_raise(t, EXC(t)->type_error, "interp_call expected at least 2 arguments, got %d",
                        argc);
    if (want_id(t, "interp_call", argv[0], &id) || want_str(t, "interp_call", argv[1]))
        return -1;
    xi_job j = {.name = AS_STR(argv[1])->data, .want_result = 1};
    if (pack_args(t, argc, argv, 2, &j))
        return -1;
    return run_job(t, id, call_body, &j, out);
}

BUILTIN(interp_exec)
{
    int64_t id;
    if (want_id(t, "interp_exec", argv[0], &id) || want_str(t, "interp_exec", argv[1]))
        return -1;
    *out = V_NONE;
    return vm_interp_exec(t, id, "<interp_exec>", AS_STR(argv[1])->data, AS_STR(argv[1])->len);
}

BUILTIN(interp_run_file)
{
    int64_t id;
    if (want_id(t, "interp_run_file", argv[0], &id) || want_str(t, "interp_run_file", argv[1]))
        return -1;
    if (vm_audit(t, "interpreters.run_file", 2, argv))
        return -1;
    xi_job j = {.name = AS_STR(argv[1])->data};
    return run_job(t, id, load_body, &j, out);
}

BUILTIN(interp_set)
{
    int64_t id;
    if (want_id(t, "interp_set", argv[0], &id) || want_str(t, "interp_set", argv[1]))
        return -1;
    xi_job j = {.name = AS_STR(argv[1])->data};
    if (vm_xi_get(t, argv[2], &j.args))
        return -1;
    return run_job(t, id, set_body, &j, out);
}

BUILTIN(interp_call_thread)
{
    int64_t id;
    if (argc < 2 || argc > 4)
        return vm_raise(t, EXC(t)->type_error, "interp_call_thread expected 2 to 4 arguments, "
                        "got %d", argc);
    if (want_id(t, "interp_call_thread", argv[0], &id) ||
        want_str(t, "interp_call_thread", argv[1]))
        return -1;
    value args = argc >= 3 ? argv[2] : vm_tuple_new(t, 0, NULL);
    if (args.tag != T_TUPLE)
        return vm_type_err(t, "interp_call_thread", "a tuple", args);
    vm_xidata check;                /* refuse what cannot be shared now, not in the thread */
    if (vm_xi_get(t, args, &check))
        return -1;
    vm_xi_clear(&check);
    /* A thread of the caller's interpreter that runs interp_call(id, name, *args)
     * [InterpreterPoolExecutor, Interpreter.call_in_thread]. */
    size_t n = AS_TUPLE(args)->len;
    vm_tuple *tu = (vm_tuple *)vm_alloc(t, T_TUPLE, sizeof(vm_tuple) + (n + 2) * sizeof(value));
    tu->len = n + 2;
    value targs = V_OBJ(T_TUPLE, tu);
    AS_TUPLE(targs)->items[0] = argv[0];
    AS_TUPLE(targs)->items[1] = argv[1];
    vm_values_copy(AS_TUPLE(targs)->items + 2, AS_TUPLE(args)->items, n);
    vm_native *nat = (vm_native *)vm_alloc(t, T_NATIVE, sizeof(vm_native));
    nat->name = "interp_call";
    nat->arity = -1;
    nat->fn = bi_interp_call;
    nat->sig = "interp_call(id, name, *args)";
    return vm_thread_start(t, V_OBJ(T_NATIVE, nat), targs, argc == 4 && vm_truthy(argv[3]), out);
}

/* ---- pending calls addressed to another interpreter ---- */

typedef struct {
    char *name;
    vm_xidata args;                 /* a tuple */
} xi_pending;

static void pending_free(xi_pending *p)
{
    vm_xi_clear(&p->args);
    vm_free(p->name);
    vm_free(p);
}

/* The rt_pending_fn: runs on a thread of the target interpreter, holding its GIL. */
static int run_pending(void *arg)
{
    xi_pending *p = arg;
    vm_thread *t = (vm_thread *)rt_thread_current();
    value args = vm_xi_new(t, &p->args);
    value f = vm_global_get(VM_INTERP(t), p->name);
    int rc;
    if (f.tag == T_UNDEF)
        rc = vm_raise(t, EXC(t)->name_error, "name '%s' is not defined", p->name);
    else {
        t->roots[t->nroots++] = args;
        value r;
        rc = vm_call(t, f, (int)AS_TUPLE(args)->len, AS_TUPLE(args)->items, &r);
        t->nroots--;
    }
    pending_free(p);
    return rc;
}

/* Frees the calls by name still queued for `in` (which is idle: nobody runs them now). */
static void drop_pending(vm_interp *in)
{
    rt_pending *q = &in->base.pending;
    pthread_mutex_lock(&q->mutex);
    int32_t n = atomic_load(&q->npending);
    for (int32_t i = 0; i < n; i++) {
        int32_t k = (q->first + i) % q->cap;
        if (q->calls[k].fn == run_pending) {
            pending_free(q->calls[k].arg);
            q->calls[k].fn = NULL;      /* never run: the queue goes with the interpreter */
        }
    }
    pthread_mutex_unlock(&q->mutex);
}

int vm_interp_pending_call(vm_thread *t, int64_t id, value name, int argc, value *argv,
                           value *out)
{
    xi_pending *p = vm_calloc(1, sizeof *p);
    if (!p)
        return vm_raise(t, EXC(t)->memory_error, "out of memory queueing a pending call");
    value tu = vm_tuple_new(t, (size_t)argc, argv);
    if (vm_xi_get(t, tu, &p->args)) {
        vm_free(p);
        return -1;
    }
    p->name = dup_bytes(AS_STR(name)->data, AS_STR(name)->len);
    vm_interp *in = pin(t, id);
    if (!in) {
        pending_free(p);
        return -1;
    }
    int full = rt_pending_add(&in->base, run_pending, p);
    unpin(t, in);
    if (full)
        pending_free(p);            /* refused, nothing raised */
    *out = V_BOOL(!full);
    return 0;
}

/* ---- asking ---- */

BUILTIN(interp_list)
{
    value l = vm_list_new(t, 4);
    if (vm_list_append(t, AS_LIST(l), V_INT(0)))
        return -1;
    pthread_mutex_lock(&reg_mu);
    size_t n = nsubs;
    int64_t *ids = vm_malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        pthread_mutex_unlock(&reg_mu);
        return vm_raise(t, EXC(t)->memory_error, "out of memory listing interpreters");
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = subs[i]->base.id;
    pthread_mutex_unlock(&reg_mu);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = vm_list_append(t, AS_LIST(l), V_INT(ids[i]));
    vm_free(ids);
    *out = l;
    return rc;
}

BUILTIN(interp_current)
{
    *out = V_INT(t->base.interp->id);
    return 0;
}

BUILTIN(interp_main)
{
    *out = V_INT(0);
    return 0;
}

BUILTIN(interp_is_running)
{
    int64_t id;
    if (want_id(t, "interp_is_running", argv[0], &id))
        return -1;
    pthread_mutex_lock(&reg_mu);
    vm_interp *in = find(id);
    int running = in ? in->sub.running > 0 : -1;
    if (in && in == (vm_interp *)t->base.interp)
        running = 1;
    pthread_mutex_unlock(&reg_mu);
    if (running < 0)
        return vm_raise(t, EXC(t)->interpreter_error, "unrecognized interpreter ID %lld", (long long)id);
    *out = V_BOOL(running);
    return 0;
}

/* ---- finalization ---- */

/* Under reg_mu: the oldest sub-interpreter with an id above `after`, or NULL. */
static vm_interp *next_sub(int64_t after)
{
    for (size_t i = 0; i < nsubs; i++)
        if (subs[i]->base.id > after)
            return subs[i];
    return NULL;
}

static int join_body(vm_thread *nt, void *arg)
{
    (void)arg;
    if (vm_threads_join_all(nt)) {
        vm_report_ignored(nt, "threading shutdown of a sub-interpreter", V_UNDEF);
    }
    vm_pending_finish(nt);
    vm_atexit_run(nt);
    return 0;
}

void vm_interps_join(vm_thread *t)
{
    /* Sub-interpreters made meanwhile (by their threads) are joined too: ids only grow. */
    for (int64_t after = 0;;) {
        pthread_mutex_lock(&reg_mu);
        vm_interp *in = next_sub(after);
        if (!in) {
            pthread_mutex_unlock(&reg_mu);
            return;
        }
        after = in->base.id;
        in->sub.joining = 1;
        atomic_store(&in->base.finalizing, 1);      /* no new thread there */
        vm_interp *p = pin_locked(t, in->base.id);
        pthread_mutex_unlock(&reg_mu);
        if (!p) {
            t->exc = V_UNDEF;
            continue;
        }
        xi_outcome o = {0};
        run_in(t, in, join_body, NULL, &o);
        vm_free(o.exc_type);
        vm_free(o.exc_msg);
        pthread_mutex_lock(&reg_mu);
        in->sub.running--;
        pthread_mutex_unlock(&reg_mu);
    }
}

void vm_interps_destroy_idle(vm_thread *t)
{
    pthread_mutex_lock(&reg_mu);
    for (int64_t after = 0;;) {
        vm_interp *in = next_sub(after);
        if (!in)
            break;
        after = in->base.id;
        if (idle(in))
            destroy(t, in);
    }
    pthread_mutex_unlock(&reg_mu);
}

void vm_interps_fini(void)
{
    /* What is left (running daemon threads' interpreters) the runtime frees next. */
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < nsubs; i++) {
        vm_pcalls_fini(subs[i]);
        drop_pending(subs[i]);
    }
    vm_free(subs);
    subs = NULL;
    nsubs = subs_cap = 0;
    pthread_mutex_unlock(&reg_mu);
}

/* Re-creates the wait queues of the queues whose handles the heap of `in` holds. */
static void queues_after_fork(vm_interp *in)
{
    for (vm_obj *o = in->heap; o; o = o->next)
        if (o->tag == T_XIQUEUE)
            vm_xiq_after_fork(o);
}

void vm_interps_after_fork_child(vm_thread *t)
{
    /* Only the forking thread exists: the locks may have been held by threads now gone. */
    pthread_mutex_init(&reg_mu, NULL);
    pthread_mutex_init(&install_mu, NULL);
    queues_after_fork(VM_INTERP(t));
    for (size_t i = 0; i < nsubs; i++) {
        queues_after_fork(subs[i]);
        vm_pcalls_fini(subs[i]);
    }
    for (vm_obj *o = VM_INTERP(t)->heap; o; o = o->next)
        if (o->tag == T_XIQUEUE)
            vm_xiq_after_fork_end(o, VM_INTERP(t));
    vm_free(subs);
    subs = NULL;
    nsubs = subs_cap = 0;
}

/* ---- install ---- */

void vm_interp_install(vm_thread *t)
{
    static const vm_native_def natives[] = {
        {"interp_create", -1, bi_interp_create, "interp_create(config=None)"},
        {"interp_destroy", 1, bi_interp_destroy, "interp_destroy(id)"},
        {"interp_exec", 2, bi_interp_exec, "interp_exec(id, source)"},
        {"interp_run_file", 2, bi_interp_run_file, "interp_run_file(id, path)"},
        {"interp_call", -1, bi_interp_call, "interp_call(id, name, *args)"},
        {"interp_call_thread", -1, bi_interp_call_thread,
         "interp_call_thread(id, name, args=(), daemon=False)"},
        {"interp_set", 3, bi_interp_set, "interp_set(id, name, x)"},
        {"interp_list", 0, bi_interp_list, "interp_list()"},
        {"interp_current", 0, bi_interp_current, "interp_current()"},
        {"interp_main", 0, bi_interp_main, "interp_main()"},
        {"interp_is_running", 1, bi_interp_is_running, "interp_is_running(id)"},
        {"interp_incref", 1, bi_interp_incref, "interp_incref(id)"},
        {"interp_decref", 1, bi_interp_decref, "interp_decref(id)"},
    };
    VM_DEF_NATIVES(t, natives);
}
