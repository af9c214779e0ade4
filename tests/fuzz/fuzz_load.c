/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the .gbc loader and verifier (vm_bc_read), then the eval loop running
 * what they accept, under an instruction budget.  Built and run by `make fuzz`
 * (docs/fuzzing.md); reproduce a crash with `build/fuzz/fuzz_load CRASHFILE`.
 *
 * The input is a .gbc image.  A copy of it gets its header's body length and CRC-32 made
 * consistent with the bytes that follow the header, so that a mutated body reaches the
 * reader and the verifier instead of stopping at "checksum mismatch".  A module that loads
 * must write back to the same bytes (vm_bc_write), is disassembled (dis never crashes), is
 * linked and its body runs on the main thread of one runtime for the whole process.
 *
 * Between inputs the interpreter is put back as it was after setup: globals restored from a
 * snapshot (so the functions and code objects of an input become garbage), recursion limit,
 * switch interval, exit handlers and asynchronous exception reset, pending calls drained,
 * and the heap collected.  Builtins that would let bytecode harm the fuzzing process are
 * replaced before the first input (see neutralise()). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vm/api/gilvm.h"
#include "vm/core/state.h"
#include "vm/toolchain/module.h"

#define HEADER_SIZE 28          /* docs/bytecode.md: body length at 20, CRC-32 at 24 */
#define BUDGET_INSTRUCTIONS 200000
#define BUDGET_TIMEOUT_MS 3000  /* wall clock: bounds native work the count does not see */
#define BUDGET_MEMORY (16ull << 20)     /* heap bytes: MemoryError beyond; bounds one call */
#define WAIT_CAP_S 0.01         /* longest a lock or queue wait may block, in seconds */

static struct {
    vm_thread *t;
    value *snap;                /* globals' values after setup (GC roots: mark_snapshot) */
    uint32_t nsnap;
    int recursion_limit;
    uint64_t switch_interval;
    vm_native_fn lock_acquire, queue_get, sleep;   /* the originals the wrappers call */
} F;

/* ---- replacement builtins ---- */

/* print: converts its arguments as print does and writes nothing. */
static int quiet_print(vm_thread *t, int argc, value *argv, value *out)
{
    for (int i = 0; i < argc; i++)
        vm_to_str(t, argv[i]);
    *out = V_NONE;
    return 0;
}

static int is_number(value v)
{
    return v.tag == T_INT || v.tag == T_BOOL || v.tag == T_FLOAT;
}

static double number(value v)
{
    return v.tag == T_FLOAT ? v.u.f : (double)v.u.i;
}

/* A timeout argument no longer than WAIT_CAP_S: None (forever) and longer ones become the
 * cap; anything else (negative, NaN, not a number) is left for the builtin to reject. */
static value capped(value timeout)
{
    if (timeout.tag == T_NONE || (is_number(timeout) && number(timeout) > WAIT_CAP_S))
        return V_FLOAT(WAIT_CAP_S);
    return timeout;
}

/* lock_acquire(lock[, blocking[, timeout]]): a blocking acquire waits at most WAIT_CAP_S
 * (one thread holding its own lock would otherwise wait forever). */
static int capped_lock_acquire(vm_thread *t, int argc, value *argv, value *out)
{
    value a[3];
    if (argc < 1 || argc > 3 || (argc >= 2 && !vm_truthy(argv[1])))
        return F.lock_acquire(t, argc, argv, out);
    a[0] = argv[0];
    a[1] = argc >= 2 ? argv[1] : V_BOOL(1);
    a[2] = argc == 3 ? argv[2] : V_NONE;
    if ((a[2].tag == T_INT && a[2].u.i == -1) || (a[2].tag == T_FLOAT && a[2].u.f == -1.0))
        a[2] = V_NONE;                              /* lock_acquire's "no timeout" */
    a[2] = capped(a[2]);
    return F.lock_acquire(t, 3, a, out);
}

/* queue_get(queue[, timeout]): waits at most WAIT_CAP_S. */
static int capped_queue_get(vm_thread *t, int argc, value *argv, value *out)
{
    if (argc < 1 || argc > 2)
        return F.queue_get(t, argc, argv, out);
    value a[2] = {argv[0], capped(argc == 2 ? argv[1] : V_NONE)};
    return F.queue_get(t, 2, a, out);
}

/* sleep(secs): checks its argument as sleep does, then sleeps 0 (yields the GIL). */
static int quick_sleep(vm_thread *t, int argc, value *argv, value *out)
{
    value zero = V_INT(0);
    if (argc == 1 && is_number(argv[0]) && number(argv[0]) >= 0)
        return F.sleep(t, 1, &zero, out);
    return F.sleep(t, argc, argv, out);
}

static void def_native(vm_thread *t, const char *name, int arity, vm_native_fn fn)
{
    vm_native *n = (vm_native *)vm_alloc(t, T_NATIVE, sizeof(vm_native));
    n->name = name;
    n->arity = arity;
    n->fn = fn;
    vm_global_set(t, name, V_OBJ(T_NATIVE, n));
}

static vm_native_fn native_fn(vm_thread *t, const char *name)
{
    value v = vm_global_get(VM_INTERP(t), name);
    if (v.tag != T_NATIVE) {
        fprintf(stderr, "fuzz_load: builtin %s is missing\n", name);
        abort();
    }
    return AS_NATIVE(v)->fn;
}

/* Replaces the builtins that would let an input harm or stall the fuzzer:
 *   None:    fork, waitpid, _exit (process control); kill, raise_signal, alarm, signal,
 *            set_wakeup_fd (signals to this process, handlers that outlive the input);
 *            thread_start, call_later (threads and timers that outlive the input); pipe,
 *            fd_read, fd_write, fd_close, set_blocking (file descriptors, e.g. libFuzzer's);
 *   no-op:   print (converts its arguments, writes nothing: output only slows fuzzing);
 *   capped:  sleep (sleeps 0), lock_acquire and queue_get (wait at most WAIT_CAP_S; with one
 *            thread nothing else could release the lock or fill the queue).
 * Kept, and undone after each input by reset(): atexit, setrecursionlimit,
 * setswitchinterval, set_async_exc, pending_call and call_soon_main.  exit raises
 * SystemExit, which just ends the run. */
static void neutralise(vm_thread *t)
{
    static const char *const none[] = {
        "fork", "waitpid", "_exit", "kill", "raise_signal", "alarm", "signal",
        "set_wakeup_fd", "thread_start", "call_later", "pipe", "fd_read", "fd_write",
        "fd_close", "set_blocking",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        native_fn(t, none[i]);                      /* it exists: the list is not stale */
        vm_global_set(t, none[i], V_NONE);
    }
    F.lock_acquire = native_fn(t, "lock_acquire");
    F.queue_get = native_fn(t, "queue_get");
    F.sleep = native_fn(t, "sleep");
    native_fn(t, "print");
    def_native(t, "print", -1, quiet_print);
    def_native(t, "lock_acquire", -1, capped_lock_acquire);
    def_native(t, "queue_get", -1, capped_queue_get);
    def_native(t, "sleep", 1, quick_sleep);
}

/* ---- the interpreter between inputs ---- */

static void mark_snapshot(vm_interp *in, vm_gc_mark_fn mark, void *g)
{
    for (uint32_t i = 0; i < F.nsnap; i++)
        mark(g, F.snap[i]);
}

static void snapshot(vm_thread *t)
{
    vm_globals *g = &VM_INTERP(t)->globals;
    F.nsnap = g->n;
    F.snap = malloc((g->n ? g->n : 1) * sizeof *F.snap);
    if (!F.snap)
        abort();
    for (uint32_t i = 0; i < g->n; i++)
        F.snap[i] = *g->cells[i];
    vm_gc_add_root_hook(mark_snapshot);
    F.recursion_limit = t->base.interp->recursion_limit;
    F.switch_interval = rt_interp_switch_interval(t->base.interp);
}

/* Puts the interpreter back as snapshot() saw it.  Global slots an input created stay (a
 * slot is never removed: linked code holds its cell), unset; their names are the only thing
 * that accumulates across inputs. */
static void reset(vm_thread *t)
{
    vm_interp *in = VM_INTERP(t);
    vm_globals *g = &in->globals;
    for (uint32_t i = 0; i < g->n; i++)
        *g->cells[i] = i < F.nsnap ? F.snap[i] : V_UNDEF;
    if (in->atexit.tag == T_LIST)
        AS_LIST(in->atexit)->len = 0;
    for (rt_thread *r = in->base.threads; r; r = r->next)
        r->recursion_limit = F.recursion_limit;
    in->base.recursion_limit = F.recursion_limit;
    rt_interp_set_switch_interval(&in->base, F.switch_interval);
    void *old = NULL;
    rt_thread_set_async_exc(&in->base, t->base.id, NULL, &old, NULL);
    t->exc = V_UNDEF;
    t->handled = V_NONE;
    vm_gc_collect(t);
}

static void set_budget(void)
{
    gilvm_limits lim = {BUDGET_INSTRUCTIONS, BUDGET_TIMEOUT_MS, BUDGET_MEMORY};
    if (gilvm_set_limits(&lim)) {
        fprintf(stderr, "fuzz_load: gilvm_set_limits failed\n");
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    gilvm_config cfg = {0};
    cfg.no_signal_handlers = 1;
    cfg.no_ffi = 1;                 /* native calls could do anything: --no-ffi, as for untrusted code */
    if (gilvm_runtime_init(&cfg))
        abort();
    F.t = vm_main_thread();
    neutralise(F.t);
    snapshot(F.t);
    return 0;
}

/* ---- one input ---- */

/* Makes the header's body length and CRC-32 those of the bytes after the header, exactly as
 * vm_bc_write computes them (zlib crc32 over bytes [28, len)). */
static void reseal(uint8_t *img, size_t len)
{
    if (len < HEADER_SIZE || len - HEADER_SIZE > UINT32_MAX)
        return;
    uint32_t blen = (uint32_t)(len - HEADER_SIZE);
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), img + HEADER_SIZE, blen);
    memcpy(img + 20, &blen, 4);
    memcpy(img + 24, &crc, 4);
}

/* A module that loads writes back to the bytes it was read from. */
static void check_rewrite(const vm_module *m, const uint8_t *img, size_t len)
{
    size_t n = 0;
    uint8_t *out = vm_bc_write(m, &n);
    if (!out) {
        fprintf(stderr, "fuzz_load: vm_bc_write refused a module vm_bc_read accepted\n");
        abort();
    }
    if (n != len || memcmp(out, img, len) != 0) {
        size_t at = 0;
        while (at < n && at < len && out[at] == img[at])
            at++;
        fprintf(stderr, "fuzz_load: read -> write differs (%zu bytes in, %zu out, first "
                "difference at byte %zu)\n", len, n, at);
        abort();
    }
    free(out);
}

/* Disassembles into memory and throws the text away: dis must cope with any loaded code. */
static void check_dis(const vm_module *m)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f)
        abort();
    dis_module(f, m);
    fclose(f);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vm_thread *t = F.t;
    uint8_t *img = malloc(size ? size : 1);
    if (!img)
        abort();
    memcpy(img, data, size);
    reseal(img, size);

    vm_module m;
    char err[1024];
    if (vm_bc_read(t, "fuzz.gbc", img, size, &m, err, sizeof err) == 0) {
        check_rewrite(&m, img, size);
        check_dis(&m);
        if (vm_module_link(t, &m) == 0) {
            vm_code *body = m.codes[0];
            vm_module_free(&m);
            set_budget();
            vm_run_code(t, body, NULL, NULL, 0);    /* -1: an exception; it is dropped */
            t->exc = V_UNDEF;
            set_budget();
            vm_pending_finish(t);                   /* queued by pending_call, call_soon_main */
        }
        vm_module_free(&m);
    }
    free(img);
    reset(t);
    return 0;
}
