/* SPDX-License-Identifier: MIT */
/* Host test of the allocator hook (gilvm_config.allocator): a counting allocator sees every
 * byte it gave out freed by gilvm_runtime_finalize, and an allocator that fails its Nth
 * allocation, for many N (each run in a child process), never crashes the host: every run
 * ends with its right output or a MemoryError (an API call: -1 with MemoryError recorded;
 * init: -1), and still frees everything.  Built by tests/embed/run.
 * Usage: host_alloc [RUNS]   (RUNS: how many failing runs at most, default 600) */
#include <gilvm.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static const char PROG[] =
    ".func work(n)\n"
    ".local parts, d, i, caught, w\n"
    " BUILD_LIST 0\n STORE_LOCAL parts\n BUILD_DICT 0\n STORE_LOCAL d\n"
    " LOAD_INT 0\n STORE_LOCAL caught\n"
    " LOAD_GLOBAL range\n LOAD_LOCAL n\n CALL 1\n GET_ITER\n"
    "next:\n FOR_ITER done\n STORE_LOCAL i\n"
    " LOAD_GLOBAL append\n LOAD_LOCAL parts\n LOAD_CONST \"s\"\n LOAD_GLOBAL str\n"
    " LOAD_LOCAL i\n CALL 1\n ADD\n CALL 2\n POP\n"
    " LOAD_LOCAL d\n LOAD_LOCAL i\n LOAD_INT 97\n MOD\n"            /* d[i % 97] += 1 */
    " LOAD_GLOBAL get\n LOAD_LOCAL d\n LOAD_LOCAL i\n LOAD_INT 97\n MOD\n LOAD_INT 0\n CALL 3\n"
    " LOAD_INT 1\n ADD\n SET_ITEM\n"
    " LOAD_LOCAL d\n LOAD_CONST \"k\"\n LOAD_GLOBAL str\n LOAD_LOCAL i\n LOAD_INT 13\n MOD\n"
    " CALL 1\n ADD\n LOAD_LOCAL i\n LOAD_LOCAL i\n BUILD_TUPLE 2\n SET_ITEM\n"  /* d["k"+str(i%13)] = (i, i) */
    " LOAD_LOCAL i\n LOAD_INT 50\n MOD\n LOAD_INT 0\n EQ\n POP_JUMP_IF_TRUE throw\n JUMP_BACKWARD next\n"
    "throw:\n"
    " .try handler\n LOAD_GLOBAL ValueError\n LOAD_CONST \"fifty\"\n CALL 1\n RAISE\n .end_try\n"
    "handler:\n PUSH_EXC_INFO\n LOAD_GLOBAL ValueError\n CHECK_EXC_MATCH\n POP_JUMP_IF_FALSE no\n"
    " POP\n LOAD_LOCAL caught\n LOAD_INT 1\n ADD\n STORE_LOCAL caught\n POP_EXCEPT\n JUMP_BACKWARD next\n"
    "no:\n SWAP\n POP_EXCEPT\n RERAISE\n"
    "done:\n LOAD_GLOBAL len\n LOAD_GLOBAL join\n LOAD_CONST \",\"\n LOAD_LOCAL parts\n CALL 2\n CALL 1\n"
    " LOAD_GLOBAL len\n LOAD_LOCAL d\n CALL 1\n ADD\n LOAD_LOCAL caught\n ADD\n"
    " LOAD_GLOBAL c_twice\n LOAD_LOCAL n\n CALL 1\n ADD\n RETURN\n.end\n"
    ".func rounds(k, n)\n.local total, j\n LOAD_INT 0\n STORE_LOCAL total\n"
    " LOAD_GLOBAL range\n LOAD_LOCAL k\n CALL 1\n GET_ITER\n"
    "again:\n FOR_ITER fin\n STORE_LOCAL j\n LOAD_LOCAL total\n LOAD_GLOBAL work\n LOAD_LOCAL n\n"
    " CALL 1\n ADD\n STORE_LOCAL total\n JUMP_BACKWARD again\n"
    "fin:\n LOAD_LOCAL total\n RETURN\n.end\n"
    " LOAD_GLOBAL thread_start\n LOAD_GLOBAL work\n LOAD_INT 300\n BUILD_TUPLE 1\n CALL 2\n"
    " LOAD_GLOBAL thread_join\n SWAP\n CALL 1\n POP\n"
    " LOAD_GLOBAL print\n LOAD_GLOBAL rounds\n LOAD_INT 12\n LOAD_INT 1500\n CALL 2\n"
    " LOAD_GLOBAL greeting\n BUILD_LIST 2\n CALL 1\n POP\n";

/* ---- the allocator: a size header before each block; fails allocation number fail_at ---- */

typedef struct { size_t size; size_t pad; } header;
static _Atomic long long live_bytes, live_blocks, nallocs, fail_at;

static int failing(void)
{
    long long n = atomic_fetch_add(&nallocs, 1) + 1;
    return n == atomic_load(&fail_at);
}

static void *a_malloc(void *data, size_t n)
{
    (void)data;
    if (n == 0) abort();                /* the contract: never 0 */
    if (failing())
        return NULL;
    header *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    h->size = n;
    atomic_fetch_add(&live_bytes, (long long)n);
    atomic_fetch_add(&live_blocks, 1);
    return h + 1;
}

static void *a_realloc(void *data, void *p, size_t n)
{
    if (!p) abort();                    /* the contract: gilvm passes NULL to malloc itself */
    if (failing())
        return NULL;
    header *h = (header *)p - 1;
    size_t old = h->size;
    header *q = realloc(h, sizeof *q + n);
    if (!q)
        return NULL;
    q->size = n;
    atomic_fetch_add(&live_bytes, (long long)n - (long long)old);
    (void)data;
    return q + 1;
}

static void a_free(void *data, void *p)
{
    (void)data;
    if (!p) abort();                    /* the contract: never NULL */
    header *h = (header *)p - 1;
    atomic_fetch_sub(&live_bytes, (long long)h->size);
    atomic_fetch_sub(&live_blocks, 1);
    free(h);
}

static const gilvm_allocator counting = {a_malloc, a_realloc, a_free, NULL};

/* ---- output captured ---- */

static char out1[4096], out2[65536];
static size_t len1, len2;

static void capture(void *data, int stream, const char *text, size_t len)
{
    (void)data;
    char *buf = stream == 1 ? out1 : out2;
    size_t *n = stream == 1 ? &len1 : &len2, cap = stream == 1 ? sizeof out1 : sizeof out2;
    if (*n + len >= cap)
        len = cap - 1 - *n;
    memcpy(buf + *n, text, len);
    *n += len;
    buf[*n] = 0;
}

static int c_twice(void *data, int argc, const gilvm_value *argv, gilvm_value *result)
{
    (void)data; (void)argc;
    *result = gilvm_int(argv[0].u.i * 2);
    return 0;
}

/* The recorded error is MemoryError, or (`after`: an earlier step failed for memory, so a
 * name it was to define may be missing) NameError. */
static int is_oom(int after)
{
    const char *t = gilvm_error_type(), *m = gilvm_error_message();
    return (t && strcmp(t, "MemoryError") == 0) || (m && strstr(m, "out of memory")) ||
           (after && t && strcmp(t, "NameError") == 0);
}

/* One run: init with the counting allocator, register, set a global, run PROG, call a
 * function, read a global, finalize.  Returns 0 if every step either did its job or failed
 * with MemoryError, and everything was freed; prints what went wrong otherwise.  *oom is set
 * when some step reported MemoryError.  The right output (from a run that does not fail) is
 * in `want` (NULL: this is that run). */
static int one_run(const char *want, long long want_call, long long *call_out, int *oom)
{
    gilvm_config cfg = {0};
    cfg.allocator = &counting;
    cfg.no_signal_handlers = 1;
    gilvm_set_output(capture, NULL);
    *oom = 0;
    if (gilvm_runtime_init(&cfg) != 0) {
        *oom = 1;
        return atomic_load(&live_bytes) == 0 ? 0 : (fprintf(stderr, "init failed and leaked\n"), 1);
    }
    int bad = 0;
    if (gilvm_register("c_twice", 1, c_twice, NULL) != 0) {
        if (!is_oom(0)) { fprintf(stderr, "register: %s\n", gilvm_error_type()); bad = 1; }
        *oom = 1;
    }
    gilvm_value g = gilvm_str("hello");
    if (gilvm_set_global("greeting", &g) != 0) {
        if (!is_oom(0)) { fprintf(stderr, "set_global: %s\n", gilvm_error_type()); bad = 1; }
        *oom = 1;
    }
    int st = gilvm_run_string("alloc_prog", PROG);
    if (st != 0) {
        if (!is_oom(*oom)) {
            fprintf(stderr, "run: status %d, %s: %s\n%s", st, gilvm_error_type(),
                    gilvm_error_message(), out2);
            bad = 1;
        }
        *oom = 1;
    } else if (want && strcmp(out1, want) != 0 && !strstr(out2, "MemoryError") &&
               !(*oom && strstr(out2, "NameError"))) {
        fprintf(stderr, "run: output %s, wanted %s\n%s", out1, want, out2);
        bad = 1;
    }
    if (st == 0 && strstr(out2, "MemoryError"))
        *oom = 1;                       /* in the thread */
    gilvm_value arg = gilvm_int(200), res = gilvm_none();
    if (gilvm_call("work", 1, &arg, &res) != 0) {
        if (!is_oom(*oom)) {
            fprintf(stderr, "call: %s: %s\n", gilvm_error_type(), gilvm_error_message());
            bad = 1;
        }
        *oom = 1;
    } else if (res.type != GILVM_INT || (want && res.u.i != want_call)) {
        fprintf(stderr, "call: wrong result\n");
        bad = 1;
    } else
        *call_out = res.u.i;
    gilvm_value_clear(&res);
    gilvm_runtime_finalize(0);
    if (atomic_load(&live_bytes) != 0 || atomic_load(&live_blocks) != 0) {
        fprintf(stderr, "after finalize: %lld bytes in %lld blocks not freed\n",
                (long long)atomic_load(&live_bytes), (long long)atomic_load(&live_blocks));
        bad = 1;
    }
    return bad;
}

int main(int argc, char **argv)
{
    long runs = argc > 1 ? atol(argv[1]) : 600;
    /* The counting run, in a child (a process inits gilvm once); it reports its output,
     * call result and allocation count through a pipe. */
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        long long call = 0;
        int oom;
        int bad = one_run(NULL, 0, &call, &oom);
        if (bad || oom || len1 == 0)
            _exit(1);
        long long total = atomic_load(&nallocs);
        if (write(fds[1], &total, sizeof total) != sizeof total ||
            write(fds[1], &call, sizeof call) != sizeof call ||
            write(fds[1], out1, len1 + 1) != (ssize_t)(len1 + 1))
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    long long total = 0, call = 0;
    char want[sizeof out1] = {0};
    CHECK(read(fds[0], &total, sizeof total) == sizeof total, "counting run reports");
    CHECK(read(fds[0], &call, sizeof call) == sizeof call, "counting run reports");
    CHECK(read(fds[0], want, sizeof want - 1) > 0, "counting run reports its output");
    close(fds[0]);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the counting run succeeds and frees every byte at finalize");
    printf("counting run: %lld allocations, all freed; output %s", total, want);
    CHECK(total > 1000, "the VM allocates through the hook");

    /* The failing runs: every N up to 200 (init), then N spread over the rest. */
    long dense = runs / 3, done = 0, ooms = 0;
    long long step = (total - dense) / (runs - dense) + 1;
    for (long long n = 1; n <= total; n += n <= dense ? 1 : step + (n % 7)) {
        atomic_store(&fail_at, n);
        fflush(stdout);
        pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            long long c = 0;
            int oom;
            int bad = one_run(want, call, &c, &oom);
            _exit(bad ? 1 : oom ? 3 : 0);
        }
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3)) {
            fprintf(stderr, "allocation %lld failing: %s %d\n", n,
                    WIFEXITED(status) ? "exit status" : "killed by signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            return 1;
        }
        ooms += WEXITSTATUS(status) == 3;
        done++;
    }
    printf("failing runs: %ld, %ld of them reported MemoryError, none crashed or leaked\n",
           done, ooms);
    CHECK(ooms > done / 2, "most failing runs see the failure");
    return 0;
}
