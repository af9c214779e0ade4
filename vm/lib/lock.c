/* SPDX-License-Identifier: MIT */
/* Lock objects [_thread.lock]: acquire (blocking, non-blocking, with a timeout), release,
 * locked.  The lock bit and owner are guarded by the object's wait-queue mutex, so waiters
 * test them without the GIL. */
#include <inttypes.h>

#include "runtime/sched.h"
#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/wait.h"

typedef struct {
    vm_waitable base;
    int locked;                 /* under base.wq.mu */
    uint64_t owner;             /* thread id of the holder, 0 if unlocked */
    uint64_t serial;            /* 1, 2, ... in creation order: its name in deadlock reports */
} vm_lock;

static _Atomic uint64_t nlocks;

static int lock_free_p(void *p) { return !((vm_lock *)p)->locked; }

static void lock_describe(void *p, char *buf, size_t n)
{
    vm_lock *l = p;
    if (l->locked)
        snprintf(buf, n, "lock %" PRIu64 ", held by thread %" PRIu64, l->serial, l->owner);
    else
        snprintf(buf, n, "lock %" PRIu64 ", not held", l->serial);
}

BUILTIN(Lock)
{
    vm_lock *l = (vm_lock *)vm_alloc(t, T_LOCK, sizeof(vm_lock));
    vm_waitq_init(&l->base.wq);
    l->serial = atomic_fetch_add(&nlocks, 1) + 1;
    *out = V_OBJ(T_LOCK, l);
    return 0;
}

static int want_lock(vm_thread *t, value v, const char *fn)
{
    return v.tag == T_LOCK ? 0 : vm_type_err(t, fn, "a lock", v);
}

/* Finds the thread state with `id` in t's interpreter; NULL if gone. */
static rt_thread *find_thread(vm_thread *t, uint64_t id)
{
    for (rt_thread *r = t->base.interp->threads; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

BUILTIN(lock_acquire)
{
    if (argc < 1 || argc > 3)
        return vm_raise(t, EXC(t)->type_error, "lock_acquire expected 1 to 3 arguments, got %d", argc);
    if (want_lock(t, argv[0], "lock_acquire"))
        return -1;
    vm_lock *l = (vm_lock *)argv[0].u.o;
    int blocking = argc < 2 || vm_truthy(argv[1]);
    value timeout = argc == 3 ? argv[2] : V_NONE;
    if ((timeout.tag == T_INT && timeout.u.i == -1) ||
        (timeout.tag == T_FLOAT && timeout.u.f == -1.0))     /* CPython's "no timeout" */
        timeout = V_NONE;
    if (!blocking && timeout.tag != T_NONE)
        return vm_raise(t, EXC(t)->value_error, "can't specify a timeout for a non-blocking call");
    int err = 0;
    uint64_t deadline = vm_deadline_from(t, timeout, "lock_acquire", &err);
    if (err)
        return -1;
    rt_sched_yield(&t->base, "lock_acquire");
    for (;;) {
        pthread_mutex_lock(&l->base.wq.mu);
        int got = !l->locked;
        if (got) {
            l->locked = 1;
            l->owner = t->base.id;
        }
        pthread_mutex_unlock(&l->base.wq.mu);
        if (got || !blocking) {
            *out = V_BOOL(got);
            return 0;
        }
        if (rt_main_runtime.finalizing) {
            rt_thread *owner = find_thread(t, l->owner);
            if (!owner || owner->daemon)
                return vm_raise(t, EXC(t)->finalization_error,
                                "cannot acquire a lock held by a daemon thread during shutdown");
        }
        int r = vm_wait(t, &l->base.wq, lock_free_p, l, deadline);
        if (r < 0)
            return -1;
        if (r == 0) {
            *out = V_BOOL(0);
            return 0;
        }
    }
}

BUILTIN(lock_release)
{
    if (want_lock(t, argv[0], "lock_release"))
        return -1;
    vm_lock *l = (vm_lock *)argv[0].u.o;
    pthread_mutex_lock(&l->base.wq.mu);
    int was = l->locked;
    uint64_t owner = l->owner;
    int released = was && owner == t->base.id;
    if (released) {
        l->locked = 0;
        l->owner = 0;
    }
    pthread_mutex_unlock(&l->base.wq.mu);
    /* After the unlock; and at once, not deferred to our release of the GIL (queue.c): a
     * thread that releases and re-takes a lock in a loop would otherwise keep winning it. */
    if (released)
        pthread_cond_signal(&l->base.wq.cv);
    if (!was)
        return vm_raise(t, EXC(t)->runtime_error, "release unlocked lock");
    if (owner != t->base.id)
        return vm_raise(t, EXC(t)->runtime_error, "cannot release un-acquired lock");
    rt_sched_yield(&t->base, "lock_release");
    *out = V_NONE;
    return 0;
}

BUILTIN(lock_locked)
{
    if (want_lock(t, argv[0], "lock_locked"))
        return -1;
    vm_lock *l = (vm_lock *)argv[0].u.o;
    pthread_mutex_lock(&l->base.wq.mu);
    *out = V_BOOL(l->locked);
    pthread_mutex_unlock(&l->base.wq.mu);
    return 0;
}

void vm_lock_install(vm_thread *t)
{
    VM_SET_HOOK(vm_gc_free_hooks[T_LOCK], vm_waitable_free);
    vm_wait_register(lock_free_p, "lock_acquire", lock_describe);
    static const vm_native_def natives[] = {
        {"Lock", 0, bi_Lock, "Lock()"},
        {"lock_acquire", -1, bi_lock_acquire, "lock_acquire(lock, blocking=True, timeout=-1)"},
        {"lock_release", 1, bi_lock_release, "lock_release(lock)"},
        {"lock_locked", 1, bi_lock_locked, "lock_locked(lock)"},
    };
    VM_DEF_NATIVES(t, natives);
}
