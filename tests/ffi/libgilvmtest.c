/* SPDX-License-Identifier: MIT */
/* libgilvmtest.so: the C side of the native-call tests (tests/programs/ffi/, examples/
 * ffi_threads.gasm).  Built by the Makefile into $(B)/tests/ffi/libgilvmtest.so; the tests
 * find it through $GILVM_TESTLIB (docs/library.md, "Native calls").  Each function is as
 * small as its test needs: identities for every type, a function that blocks, a sort that
 * calls a comparator, callbacks of every type, and threads of its own that call back. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* ---- identities, one per type: the value comes back as it went ---- */

int8_t t_i8(int8_t x) { return x; }
int16_t t_i16(int16_t x) { return x; }
int32_t t_i32(int32_t x) { return x; }
int64_t t_i64(int64_t x) { return x; }
uint8_t t_u8(uint8_t x) { return x; }
uint16_t t_u16(uint16_t x) { return x; }
uint32_t t_u32(uint32_t x) { return x; }
uint64_t t_u64(uint64_t x) { return x; }
size_t t_size(size_t x) { return x; }
ssize_t t_ssize(ssize_t x) { return x; }
float t_float(float x) { return x; }
double t_double(double x) { return x; }
void *t_ptr(void *p) { return p; }
const char *t_str(const char *s) { return s; }

/* ---- values C makes ---- */

static int calls;
void t_void(void) { calls++; }
int t_calls(void) { return calls; }
uint64_t t_u64_max(void) { return UINT64_MAX; }
const char *t_null_str(void) { return NULL; }
const char *t_hello(void) { return "hello from C"; }
size_t t_strlen(const char *s) { return s ? strlen(s) : 0; }
/* Widening: the low bits of a register must not leak into a narrow result. */
int8_t t_i8_neg(void) { return -1; }
uint16_t t_u16_max(void) { return UINT16_MAX; }

/* Every argument kind at once: the sum of the numbers, plus the C string's length; counted
 * in t_calls, as t_void. */
double t_mix(int8_t a, uint16_t b, int32_t c, int64_t d, float e, double f, const char *s)
{
    calls++;
    return (double)a + b + c + (double)d + e + f + (double)(s ? strlen(s) : 0);
}

/* Variadic: the sum of n int64 values. */
int64_t t_sum_var(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += va_arg(ap, int64_t);
    va_end(ap);
    return sum;
}

/* ---- memory ---- */

static int32_t static_array[4] = {10, 20, 30, 40};
int32_t *t_array(void) { return static_array; }
void t_fill(uint8_t *buf, size_t n, uint8_t v) { memset(buf, v, n); }

/* ---- blocking ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Sleeps ms milliseconds; returns ms. */
int t_sleep_ms(int ms)
{
    sleep_ms(ms);
    return ms;
}

/* A flag another thread sets (t_set_flag) while this one waits for it (t_wait_flag). */
static int flag;
void t_set_flag(void) { __atomic_store_n(&flag, 1, __ATOMIC_SEQ_CST); }
void t_clear_flag(void) { __atomic_store_n(&flag, 0, __ATOMIC_SEQ_CST); }

/* Waits until the flag is set, at most timeout_ms; 1 if it was set, 0 on timeout. */
int t_wait_flag(int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited++) {
        if (__atomic_load_n(&flag, __ATOMIC_SEQ_CST))
            return 1;
        sleep_ms(1);
    }
    return __atomic_load_n(&flag, __ATOMIC_SEQ_CST);
}

/* ---- callbacks ---- */

/* Insertion sort of n int32 with a qsort-style comparator; returns the comparisons made. */
int64_t t_sort(int32_t *a, size_t n, int (*cmp)(const void *, const void *))
{
    int64_t ncmp = 0;
    for (size_t i = 1; i < n; i++) {
        int32_t x = a[i];
        size_t j = i;
        while (j > 0) {
            ncmp++;
            if (cmp(&a[j - 1], &x) <= 0)
                break;
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
    return ncmp;
}

/* f(0) + f(1) + ... + f(n - 1). */
int64_t t_call_n(int64_t (*f)(int64_t), int n)
{
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += f(i);
    return sum;
}

/* One call of a callback of each result type. */
int8_t t_cb_i8(int8_t (*f)(int8_t), int8_t x) { return f(x); }
uint16_t t_cb_u16(uint16_t (*f)(uint16_t), uint16_t x) { return f(x); }
uint64_t t_cb_u64(uint64_t (*f)(uint64_t), uint64_t x) { return f(x); }
float t_cb_float(float (*f)(float), float x) { return f(x); }
double t_cb_double(double (*f)(double), double x) { return f(x); }
void *t_cb_ptr(void *(*f)(void *), void *p) { return f(p); }
void t_cb_void(void (*f)(const char *), const char *s) { f(s); }

/* A callback taking every argument kind. */
int64_t t_cb_mix(int64_t (*f)(int8_t, uint16_t, int32_t, int64_t, float, double, const char *, void *))
{
    return f(-5, 65535, -100000, 5000000000LL, 1.5f, 2.25, "hi", (void *)0x1234);
}

/* ---- threads of the library's own that call back ---- */

typedef struct {
    pthread_t tid;
    int index, ncalls;
    int64_t (*cb)(int64_t, int64_t);
    int64_t sum;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->ncalls; i++)
        w->sum += w->cb(w->index, i);
    return NULL;
}

/* Starts nthreads pthreads, each calling cb(thread index, call index) ncalls times, joins
 * them and returns the sum of every result; -1 if a thread cannot start. */
int64_t t_threads(int nthreads, int ncalls, int64_t (*cb)(int64_t, int64_t))
{
    worker *w = calloc((size_t)nthreads, sizeof *w);
    if (!w)
        return -1;
    int started = 0;
    for (; started < nthreads; started++) {
        w[started] = (worker){.index = started, .ncalls = ncalls, .cb = cb};
        if (pthread_create(&w[started].tid, NULL, worker_main, &w[started]) != 0)
            break;
    }
    int64_t sum = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(w[i].tid, NULL);
        sum += w[i].sum;
    }
    free(w);
    return started == nthreads ? sum : -1;
}

/* ---- callbacks in both register classes, and arguments with junk above their bits ---- */

/* A callback whose int and double arguments interleave. */
double t_cb_dmix(double (*f)(int32_t, double, int64_t, double, uint8_t, double))
{
    return f(-7, 0.5, 1LL << 40, -2.0, 200, 8.0);
}

/* Calls f, a callback of ("int8", "uint16"), as if it took two int64_t whose high bits are
 * junk: a callee may read only the low bits of a narrow argument's register. */
int64_t t_cb_junk(void *f)
{
    int64_t (*g)(int64_t, int64_t) = (int64_t (*)(int64_t, int64_t))f;
    return g((int64_t)0x7777777777777785ULL, (int64_t)0x55555555FFFF0001ULL);
}
