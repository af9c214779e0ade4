/* SPDX-License-Identifier: MIT */
/* `gilvm explore` (docs/scheduling.md): runs FILE under the controlled scheduler with the
 * seeds S0, S0+1, ... in child processes of this same binary until one fails, then writes
 * that run's schedule and trace; `--minimize` shrinks a failing schedule.  Called by main.c.
 *
 * Notes.  A run is one fork() of this process, whose child runs cli_main (main.c) on
 * `gilvm --schedule=STRATEGY:SEED --schedule-out=TMP FILE ARGS` and exits with its status,
 * its stdin /dev/null and its stdout and stderr files of its job slot, on a CPU of its own;
 * then one wait: no exec, no shell, no pipes to drain.  A fork is a faithful stand-in for
 * an exec of gilvm because of one rule: explore runs nothing of the library before its runs
 * fork (no runtime, no threads, no signal handler, no atexit), so each run starts its
 * runtime from scratch as an exec'd gilvm would; and it writes to stdout only fully
 * buffered, as a run's stdout (a file) is, and flushes stdout and stderr before each fork.
 * The child closes explore's descriptors and empties its signal mask.  The slots' files are
 * in a temporary folder in memory where there is one (tmp_parent).  The replay command
 * explore prints runs the same cli_main in a process of its own (tests/sched checks that it
 * reproduces a run byte for byte).
 * The parent blocks SIGCHLD and sleeps in sigtimedwait until
 * a child ends or the nearest per-run deadline (a run past it is killed: "timed out").
 * SIGINT and SIGTERM are blocked and waited for the same way: on one, the runs are killed,
 * the temporary folder removed, and explore dies of the signal.
 * The result does not depend on --jobs: once a run fails no new seed starts, the runs of
 * higher seeds are killed, those of lower seeds are waited for, and the lowest failing seed
 * is the one reported.  For the same reason PCT's step estimate k for seed s is the largest
 * step count of the seeds up to s - K_WINDOW (or of S0 alone, for the first ones): a seed
 * starts only once those have finished, so k does not depend on which run ended first. */
#ifdef __linux__
#define _GNU_SOURCE                 /* sched_setaffinity: on_cpu() */
#include <sched.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vm/cli/cmdline.h"
#include "vm/cli/explore.h"

#define K_WINDOW 64                     /* PCT's k for seed s comes from seeds <= s - 65 */
#define RING (2 * K_WINDOW)             /* finished-seed records kept (seed % RING) */
#define MAX_JOBS 256
#define TAIL_LINES 20                   /* stderr lines shown of a failing run */
#define EXIT_DEADLOCK 3                 /* the controlled scheduler's deadlock status */

/* How one run ended. */
typedef struct {
    int code;                           /* exit status, or -1 */
    int sig;                            /* terminating signal, or 0 */
    int timed_out;
    int thread_exc;                     /* status 0, but a thread's exception was printed */
} outcome;

/* One job slot: a running child and its files (reused run after run). */
typedef struct {
    pid_t pid;                          /* 0: free; -1: the failing run's, kept */
    unsigned long long seed;
    double deadline;
    int killed;                         /* killed because a lower seed failed */
    int timed_out;
    char sched[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
} slot;

typedef struct {
    const char *prog;                   /* argv[0] of the user's gilvm: commands shown, runs */
    char strategy[32];                  /* "random" or "pct:D" */
    int pct;
    unsigned long long iterations, seed0;
    int jobs;
    double timeout_s;
    const char *out_dir;
    int minimize;                       /* --minimize or --minimize=FILE */
    const char *minimize_file;
    int argc;                           /* FILE ARGS */
    char **argv;
    char tmp[256];                      /* our temporary folder */
    /* the seeds' bookkeeping */
    unsigned long long low;             /* the lowest seed not finished */
    unsigned char done[RING];
    unsigned long steps[RING];          /* a finished seed's steps */
    unsigned long prefmax[RING];        /* max steps over seeds S0..seed */
    unsigned long first_steps;          /* S0's steps */
    /* the digests seen */
    uint64_t *set;
    size_t set_cap, set_n;
} explore;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* SIGINT or SIGTERM once one came (the parent keeps them blocked, and so pending, like
 * SIGCHLD: see wait_signal). */
static int stop_signal;

/* Sleeps until SIGCHLD, SIGINT or SIGTERM is pending or `left` seconds pass; notes a stop. */
static void wait_signal(double left)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    struct timespec ts = {(time_t)left, (long)((left - (time_t)left) * 1e9)};
    int sig = sigtimedwait(&set, NULL, &ts);
    if (sig == SIGINT || sig == SIGTERM)
        stop_signal = sig;
}

/* 1 once SIGINT or SIGTERM came: the terminal's Ctrl-C reaches the runs too, so a run that
 * ended by it is no failure of its schedule. */
static int stopping(void)
{
    sigset_t p;
    if (!stop_signal && !sigpending(&p)) {
        if (sigismember(&p, SIGINT))
            stop_signal = SIGINT;
        else if (sigismember(&p, SIGTERM))
            stop_signal = SIGTERM;
    }
    return stop_signal != 0;
}

static int explore_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "gilvm: explore: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 2;
}

/* ---- arguments ---- */

static int parse_ull(const char *s, unsigned long long *v)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+')
        return -1;
    *v = strtoull(s, &end, 10);
    return errno || *end ? -1 : 0;
}

/* "10", "10s", "500ms", "0.5" seconds; -1 if invalid. */
static double parse_seconds(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno)
        return -1;
    if (!strcmp(end, "ms"))
        v /= 1e3;
    else if (*end && strcmp(end, "s"))
        return -1;
    return v > 0 && v < 1e7 ? v : -1;
}

static int parse_strategy(explore *x, const char *v)
{
    if (!strcmp(v, "random")) {
        strcpy(x->strategy, "random");
        return 0;
    }
    unsigned long long d = 3;
    if (!strcmp(v, "pct") || (!strncmp(v, "pct:", 4) && !parse_ull(v + 4, &d) && d >= 1 &&
                              d <= 100)) {
        x->pct = 1;
        snprintf(x->strategy, sizeof x->strategy, "pct:%llu", d);
        return 0;
    }
    return -1;
}

static const char explore_usage[] =
    "usage: gilvm explore [OPTIONS] FILE [ARGS...]\n"
    "Runs FILE under the controlled scheduler with the seeds S0, S0+1, ... until a run fails\n"
    "(a non-zero status, an uncaught exception in any thread, a deadlock, a time-out).\n"
    "\n"
    "  --strategy=S        random, pct or pct:DEPTH (default random)\n"
    "  --iterations=N      seeds to run (default 1000)\n"
    "  --seed=S0           the first seed (default: from the clock)\n"
    "  --jobs=J            runs at a time (default: the number of CPUs)\n"
    "  --timeout=SECS      a run past SECS is killed and fails (default 10)\n"
    "  --out-dir=DIR       where the schedule and trace files go (default .)\n"
    "  --minimize          shrink the failing schedule to its essential preemptions\n"
    "  --minimize=SCHEDULE shrink this schedule file of FILE instead of exploring\n"
    "\n"
    "exit status: 0 no run failed, 1 a run failed, 2 usage error (docs/scheduling.md)\n";

/* 0 with the options read, 1 after printing the usage (--help), or the usage error's status. */
static int parse_args(explore *x, int argc, char **argv)
{
    int i = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i], *v;
        unsigned long long n;
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(explore_usage, stdout);
            return 1;
        } else if ((v = cli_opt_value(argc, argv, &i, "--strategy"))) {
            if (parse_strategy(x, v))
                return cli_usage_error("explore: invalid --strategy '%s' (random, pct or "
                                       "pct:DEPTH)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--iterations"))) {
            if (parse_ull(v, &n) || n < 1)
                return cli_usage_error("explore: invalid --iterations '%s' (a positive count)",
                                       v);
            x->iterations = n;
        } else if ((v = cli_opt_value(argc, argv, &i, "--seed"))) {
            if (parse_ull(v, &n))
                return cli_usage_error("explore: invalid --seed '%s' (an unsigned integer)", v);
            x->seed0 = n;
        } else if ((v = cli_opt_value(argc, argv, &i, "--jobs"))) {
            if (parse_ull(v, &n) || n < 1 || n > MAX_JOBS)
                return cli_usage_error("explore: invalid --jobs '%s' (1 to 256)", v);
            x->jobs = (int)n;
        } else if ((v = cli_opt_value(argc, argv, &i, "--timeout"))) {
            if ((x->timeout_s = parse_seconds(v)) < 0)
                return cli_usage_error("explore: invalid --timeout '%s' (seconds, e.g. 10 or "
                                       "500ms)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--out-dir"))) {
            if (!*v)
                return cli_usage_error("%s", "explore: --out-dir needs a folder");
            x->out_dir = v;
        } else if (!strcmp(a, "--minimize"))
            x->minimize = 1;
        else if (!strncmp(a, "--minimize=", 11)) {
            if (!a[11])
                return cli_usage_error("%s", "explore: --minimize= needs a schedule file");
            x->minimize = 1;
            x->minimize_file = a + 11;
        } else
            return cli_usage_error("explore: unknown option '%s'", a);
    }
    if (i >= argc)
        return cli_usage_error("%s", "explore: missing file (gilvm explore [OPTIONS] FILE "
                               "[ARGS])");
    if (!strcmp(argv[i], "-"))
        return cli_usage_error("%s", "explore: the program must be a file, not stdin");
    x->argc = argc - i;
    x->argv = argv + i;
    return 0;
}

/* ---- runs ---- */

/* The CPUs explore may use, read once before the first run, and whether there are several
 * (-1: not read yet). */
#ifdef __linux__
static cpu_set_t all_cpus;
#endif
static int have_cpus = -1;

/* Makes the calling run's process use only the `slot`-th CPU of explore's mask, so J
 * parallel runs use J CPUs instead of sharing one, and the handoffs between a run's threads
 * are context switches on one CPU, never a wait for another CPU to wake (runtime/sched.c
 * one_cpu: a run there does not spin).  Linux only; elsewhere nothing. */
static void on_cpu(int slot)
{
#ifdef __linux__
    if (have_cpus < 0)
        have_cpus = sched_getaffinity(0, sizeof all_cpus, &all_cpus) == 0 &&
                    CPU_COUNT(&all_cpus) > 1;
    if (!have_cpus || slot < 0)
        return;
    int n = slot % CPU_COUNT(&all_cpus);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &all_cpus) && n-- == 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            sched_setaffinity(0, sizeof one, &one);
            return;
        }
#else
    (void)slot;
#endif
}

/* Starts a run: a fork() of this process that runs `gilvm OPTS FILE ARGS` (cli_main, as if
 * exec'd) with stdin /dev/null and stdout and stderr written to `out` and `err`, on the
 * `cpu`-th CPU (< 0: on explore's CPUs).  The child's pid, or -1 with errno set. */
static pid_t start_run(explore *x, const char *const *opts, const char *out, const char *err,
                       int cpu)
{
    int nopt = 0;
    while (opts[nopt])
        nopt++;
    char **av = malloc((size_t)(1 + nopt + x->argc + 1) * sizeof *av);
    if (!av)
        return errno = ENOMEM, -1;
    int n = 0;
    av[n++] = (char *)x->prog;
    for (int k = 0; k < nopt; k++)
        av[n++] = (char *)opts[k];
    for (int k = 0; k < x->argc; k++)
        av[n++] = x->argv[k];
    av[n] = NULL;
    on_cpu(-1);                         /* reads the mask in the parent, once */
    int fd[3] = {open("/dev/null", O_RDONLY | O_CLOEXEC),
                 open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600),
                 open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    pid_t pid = -1;
    if (fd[0] >= 0 && fd[1] >= 0 && fd[2] >= 0) {
        fflush(stdout);                 /* nothing of explore's output goes to the run */
        fflush(stderr);
        pid = fork();
    }
    if (pid == 0) {
        /* the run: fds 0-2 its own; the others are those explore inherited, which an exec
         * would keep too (explore holds no descriptor of its own across a fork); the signal
         * mask empty; explore installs no signal handler, so the dispositions are what an
         * exec would leave */
        for (int k = 0; k < 3; k++)
            if (dup2(fd[k], k) < 0)
                _exit(127);
        for (int k = 0; k < 3; k++)
            if (fd[k] > 2)
                close(fd[k]);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        on_cpu(cpu);
        int status = cli_main(n, av);
        free(av);                       /* the run's memory is its own: no leak (ASan) */
        exit(status);                   /* as main's return: flushes stdio, runs atexit */
    }
    int e = errno;
    for (int k = 0; k < 3; k++)
        if (fd[k] >= 0)
            close(fd[k]);
    free(av);
    return pid < 0 ? (errno = e, -1) : pid;
}

static outcome outcome_of(int status, int timed_out)
{
    outcome o = {-1, 0, timed_out, 0};
    if (WIFEXITED(status))
        o.code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        o.sig = WTERMSIG(status);
    return o;
}

static int failed(outcome o)
{
    return o.timed_out || o.code != 0 || o.thread_exc;
}

static char *read_all(const char *path, size_t *len);

/* The first "Exception in thread N:" block of stderr text `s` (a thread's uncaught
 * exception, which does not change the exit status), or NULL. */
static const char *thread_exc_block(const char *s)
{
    static const char mark[] = "Exception in thread ";
    if (!strncmp(s, mark, sizeof mark - 1))
        return s;
    const char *p = strstr(s, "\nException in thread ");
    return p ? p + 1 : NULL;
}

/* Sets o->thread_exc if a run that exited 0 printed a thread's uncaught exception to `err`. */
static void note_thread_exc(outcome *o, const char *err)
{
    struct stat st;
    if (o->code != 0 || o->timed_out || stat(err, &st) || st.st_size == 0)
        return;
    char *s = read_all(err, NULL);
    o->thread_exc = s && thread_exc_block(s);
    free(s);
}

/* Runs one child to its end (or kills it at the time-out). */
static int run_wait(explore *x, const char *const *opts, const char *out, const char *err,
                    outcome *o)
{
    pid_t pid = start_run(x, opts, out, err, -1);
    if (pid < 0)
        return -1;
    double deadline = now_s() + x->timeout_s;
    int status, timed_out = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        double left = deadline - now_s();
        if ((left <= 0 || stopping()) && !timed_out) {
            kill(pid, SIGKILL);
            timed_out = 1;
            continue;
        }
        wait_signal(timed_out ? 1 : left);
    }
    if (stopping())
        return errno = EINTR, -1;
    *o = outcome_of(status, timed_out);
    note_thread_exc(o, err);
    return 0;
}

/* The words describing how a run ended. */
static void describe(outcome o, double timeout_s, char *buf, size_t len)
{
    if (o.timed_out)
        snprintf(buf, len, "timed out after %g s (killed)", timeout_s);
    else if (o.sig)
        snprintf(buf, len, "killed by signal %d (%s)", o.sig, strsignal(o.sig));
    else if (o.thread_exc)
        snprintf(buf, len, "uncaught exception in a thread (exit status 0)");
    else if (o.code == 1)
        snprintf(buf, len, "uncaught exception (exit status 1)");
    else if (o.code == EXIT_DEADLOCK)
        snprintf(buf, len, "deadlock (exit status 3)");
    else
        snprintf(buf, len, "exit status %d", o.code);
}

/* Reads at most `cap` - 1 bytes of `path` (all of it if it is shorter) into buf. */
static size_t read_head(const char *path, char *buf, size_t cap)
{
    size_t n = 0;
    FILE *fp = fopen(path, "rb");
    if (fp) {
        n = fread(buf, 1, cap - 1, fp);
        fclose(fp);
    }
    buf[n] = 0;
    return n;
}

/* Reads the whole file; NULL if it can't. */
static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap)
            break;
        char *more = realloc(buf, 2 * cap + 1);
        if (!more)
            free(buf);
        buf = more;
        cap *= 2;
    }
    fclose(fp);
    if (buf) {
        buf[n] = 0;
        if (len)
            *len = n;
    }
    return buf;
}

/* The `steps` and `digest` of a schedule file's header; 0 if it has them. */
static int schedule_header(const char *path, unsigned long *steps, uint64_t *digest)
{
    char buf[2048];
    read_head(path, buf, sizeof buf);
    int have = 0;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;                      /* a cut line */
        *nl = 0;
        unsigned long long v;
        if (sscanf(line, "steps %llu", &v) == 1)
            *steps = (unsigned long)v, have |= 1;
        else if (sscanf(line, "digest %llx", &v) == 1)
            *digest = v, have |= 2;
        if (have == 3 || (line[0] >= '0' && line[0] <= '9'))
            break;                      /* the header is over */
        line = nl + 1;
    }
    return have == 3 ? 0 : -1;
}

/* The number of `preempt` lines of a schedule file. */
static int count_preempts(const char *text)
{
    int n = 0;
    char kind[32];
    for (const char *l = text; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
        if (sscanf(l, "%*u %*s %31s", kind) == 1 && !strcmp(kind, "preempt"))
            n++;
    return n;
}

/* Adds a digest to the set; grows it as needed (a failure to grow only undercounts). */
static void digest_add(explore *x, uint64_t d)
{
    if (2 * (x->set_n + 1) > x->set_cap) {
        size_t cap = x->set_cap ? 2 * x->set_cap : 1024;
        uint64_t *s = calloc(cap, sizeof *s);
        if (!s)
            return;
        for (size_t k = 0; k < x->set_cap; k++) {
            uint64_t v = x->set[k];
            if (!v)
                continue;
            size_t j = (size_t)(v * 0x9e3779b97f4a7c15ull) & (cap - 1);
            while (s[j])
                j = (j + 1) & (cap - 1);
            s[j] = v;
        }
        free(x->set);
        x->set = s;
        x->set_cap = cap;
    }
    d |= d == 0;                        /* 0 marks a free slot: fold it onto 1 */
    size_t j = (size_t)(d * 0x9e3779b97f4a7c15ull) & (x->set_cap - 1);
    while (x->set[j]) {
        if (x->set[j] == d)
            return;
        j = (j + 1) & (x->set_cap - 1);
    }
    x->set[j] = d;
    x->set_n++;
}

/* ---- output ---- */

/* Writes s, quoted for a POSIX shell if it needs it. */
static void put_shell_word(FILE *fp, const char *s)
{
    if (*s && !s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                           "_-./=:,+@%")]) {
        fputs(s, fp);
        return;
    }
    fputc('\'', fp);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", fp);
        else
            fputc(*s, fp);
    fputc('\'', fp);
}

/* Prints LABEL then the command "gilvm OPT FILE ARGS", quoted for a shell. */
static void put_command(explore *x, const char *label, const char *opt)
{
    fputs(label, stdout);
    put_shell_word(stdout, x->prog);
    putchar(' ');
    put_shell_word(stdout, opt);
    for (int k = 0; k < x->argc; k++) {
        putchar(' ');
        put_shell_word(stdout, x->argv[k]);
    }
    putchar('\n');
}

/* Prints "replay:   gilvm --replay=SCHEDULE FILE ARGS". */
static void put_replay(explore *x, const char *sched)
{
    char opt[PATH_MAX + 16];
    snprintf(opt, sizeof opt, "--replay=%s", sched);
    put_command(x, "replay:   ", opt);
}

/* Prints the last TAIL_LINES lines of file `path` between marker lines; an empty file is
 * left out, or mentioned if `always`. */
static void put_tail(const char *path, const char *what, int always)
{
    size_t n;
    char *s = read_all(path, &n);
    if (!s || !n) {
        if (always)
            printf("(the run wrote nothing to %s)\n", what);
        free(s);
        return;
    }
    size_t start = n, lines = 0;
    if (s[n - 1] == '\n')
        start--;
    while (start > 0 && lines < TAIL_LINES)
        if (s[--start] == '\n')
            lines++;
    if (s[start] == '\n')
        start++;
    printf("--- the run's %s%s ---\n", what, start ? " (its end)" : "");
    fwrite(s + start, 1, n - start, stdout);
    if (s[n - 1] != '\n')
        putchar('\n');
    printf("---\n");
    free(s);
}

/* out_dir/BASE+TAG+SUFFIX, where BASE is `file`'s name without its folder and without the
 * extension `ext` (one of them, a list ending in NULL). */
static void out_path(explore *x, char *buf, size_t len, const char *file,
                     const char *const *ext, const char *tag, const char *suffix)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strlen(base);
    for (; *ext; ext++) {
        size_t e = strlen(*ext);
        if (n > e && !strcmp(base + n - e, *ext)) {
            n -= e;
            break;
        }
    }
    if (x->out_dir)
        snprintf(buf, len, "%s/%.*s%s%s", x->out_dir, (int)n, base, tag, suffix);
    else
        snprintf(buf, len, "%.*s%s%s", (int)n, base, tag, suffix);
}

/* out_dir/PROGRAM-seedN.SUFFIX for FILE (tag "-seedN"), PROGRAM being FILE's base name. */
static void out_name(explore *x, char *buf, size_t len, const char *tag, const char *suffix)
{
    static const char *const ext[] = {".gasm", ".gbc", NULL};
    out_path(x, buf, len, x->argv[0], ext, tag, suffix);
}

/* Copies file `from` to `to`; 0 or -1 with errno set. */
static int copy_file(const char *from, const char *to)
{
    size_t n;
    char *s = read_all(from, &n);
    if (!s)
        return -1;
    FILE *fp = fopen(to, "wb");
    if (!fp) {
        free(s);
        return -1;
    }
    fwrite(s, 1, n, fp);
    free(s);
    return cli_output_close(fp, to);
}

/* Replays `sched` once more with --trace=TRACE (the timeline); says so if it ended otherwise
 * than `expect`. */
static void write_trace(explore *x, const char *sched, const char *trace, outcome expect)
{
    char ro[PATH_MAX + 16], to[PATH_MAX + 16], out[PATH_MAX + 8], err[PATH_MAX + 8];
    snprintf(ro, sizeof ro, "--replay=%s", sched);
    snprintf(to, sizeof to, "--trace=%s", trace);
    snprintf(out, sizeof out, "%s/trace.out", x->tmp);
    snprintf(err, sizeof err, "%s/trace.err", x->tmp);
    const char *opts[] = {ro, to, NULL};
    outcome o;
    if (run_wait(x, opts, out, err, &o)) {
        printf("trace:    (not written: can't start a run: %s)\n", strerror(errno));
        return;
    }
    struct stat st;
    if (stat(trace, &st)) {
        printf("trace:    (not written: the replay wrote no trace)\n");
        return;
    }
    printf("trace:    %s\n", trace);
    if (o.code != expect.code || o.sig != expect.sig || o.timed_out != expect.timed_out ||
        o.thread_exc != expect.thread_exc) {
        char d[128];
        describe(o, x->timeout_s, d, sizeof d);
        printf("          (this replay ended otherwise: %s)\n", d);
    }
}

/* ---- minimizing ---- */

/* The "same way" of failing: the same outcome and, for an uncaught exception, the same
 * exception class (the last stderr line up to its ':'). */
typedef struct {
    outcome o;
    char exc[128];
} failure;

static void failure_of(outcome o, const char *err, failure *f)
{
    f->o = o;
    f->exc[0] = 0;
    if (o.code != 1 && !o.thread_exc)
        return;
    size_t n;
    char *s = read_all(err, &n);
    if (!s)
        return;
    const char *line = NULL;
    if (o.thread_exc) {
        /* the block's exception line: its first line after the first that is not indented
         * and not "Traceback ..." */
        const char *b = thread_exc_block(s);
        for (const char *l = b ? strchr(b, '\n') : NULL; l && !line; l = strchr(l, '\n')) {
            l++;
            if (*l && *l != ' ' && strncmp(l, "Traceback ", 10))
                line = l;
        }
    } else {
        while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
            s[--n] = 0;
        line = strrchr(s, '\n');
        line = line ? line + 1 : s;
    }
    if (line) {
        size_t k = strcspn(line, ":\n");
        snprintf(f->exc, sizeof f->exc, "%.*s", (int)(k < 127 ? k : 127), line);
    }
    free(s);
}

static int same_failure(const failure *a, const failure *b)
{
    return a->o.code == b->o.code && a->o.sig == b->o.sig &&
           a->o.thread_exc == b->o.thread_exc && !a->o.timed_out && !b->o.timed_out &&
           !strcmp(a->exc, b->exc);
}

/* A schedule file as its lines. */
typedef struct {
    char *text;
    char **line;
    int n;
} lines;

static int lines_read(const char *path, lines *ls)
{
    ls->text = read_all(path, NULL);
    ls->line = NULL;
    ls->n = 0;
    if (!ls->text)
        return -1;
    int cap = 0;
    for (char *p = ls->text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        if (ls->n == cap) {
            cap = cap ? 2 * cap : 64;
            char **more = realloc(ls->line, (size_t)cap * sizeof *more);
            if (!more)
                return -1;
            ls->line = more;
        }
        ls->line[ls->n++] = p;
        p = nl ? nl + 1 : p + strlen(p);
    }
    return 0;
}

static void lines_free(lines *ls)
{
    free(ls->text);
    free(ls->line);
}

static int is_preempt(const char *l)
{
    char kind[32];
    return sscanf(l, "%*u %*s %31s", kind) == 1 && !strcmp(kind, "preempt");
}

/* Writes the lines of `ls` to `path`, leaving out the preempt lines whose index in `pre` has
 * drop[k] set. */
static int write_without(const char *path, lines *ls, const int *pre, const char *drop, int np)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    for (int i = 0, k = 0; i < ls->n; i++) {
        if (k < np && pre[k] == i) {
            if (drop[k++])
                continue;
        }
        fprintf(fp, "%s\n", ls->line[i]);
    }
    return cli_output_close(fp, path);
}

/* Replays schedule `cand` and, if it fails as `want` does, leaves the schedule the run took in
 * `taken`; 1 if so, 0 if it ran otherwise, -1 if it could not run. */
static int try_schedule(explore *x, const char *cand, const char *taken, const failure *want)
{
    char ro[PATH_MAX + 16], so[PATH_MAX + 24], out[PATH_MAX + 8], err[PATH_MAX + 8];
    snprintf(ro, sizeof ro, "--replay=%s", cand);
    snprintf(so, sizeof so, "--schedule-out=%s", taken);
    snprintf(out, sizeof out, "%s/min.out", x->tmp);
    snprintf(err, sizeof err, "%s/min.err", x->tmp);
    const char *opts[] = {ro, so, NULL};
    outcome o;
    if (run_wait(x, opts, out, err, &o))
        return -1;
    failure f;
    failure_of(o, err, &f);
    return same_failure(&f, want);
}

/* Shrinks the failing schedule `from` (which fails as `want`): removes preempt lines, a chunk
 * at a time then one at a time (ddmin), keeping a removal when the replay still fails the same
 * way and the schedule it took has fewer preemptions; the schedule of the last such run is
 * left in `best`.  The number of replays, or -1 if a run could not start. */
static int shrink(explore *x, const char *from, const char *best, const failure *want)
{
    char cand[PATH_MAX], taken[PATH_MAX];
    snprintf(cand, sizeof cand, "%s/cand.schedule", x->tmp);
    snprintf(taken, sizeof taken, "%s/taken.schedule", x->tmp);
    /* start from the schedule a replay of `from` takes (so every line is one that applied) */
    int r = try_schedule(x, from, best, want), replays = 1;
    if (r < 0)
        return -1;
    if (!r && copy_file(from, best))
        return -1;
    for (;;) {
        lines ls;
        if (lines_read(best, &ls)) {
            lines_free(&ls);
            return -1;
        }
        int np = 0;
        int *pre = malloc((size_t)(ls.n + 1) * sizeof *pre);
        char *drop = calloc((size_t)ls.n + 1, 1);
        if (!pre || !drop) {
            free(pre), free(drop), lines_free(&ls);
            return -1;
        }
        for (int i = 0; i < ls.n; i++)
            if (is_preempt(ls.line[i]))
                pre[np++] = i;
        int improved = 0;
        /* ddmin: chunks of np/2, np/4, ... 1; a chunk's removal that still fails is kept */
        for (int chunk = np / 2 > 0 ? np / 2 : 1; chunk >= 1 && !improved && np;
             chunk = chunk / 2) {
            for (int start = 0; start < np && !improved; start += chunk) {
                memset(drop, 0, (size_t)np);
                memset(drop + start, 1, (size_t)(start + chunk <= np ? chunk : np - start));
                if (write_without(cand, &ls, pre, drop, np)) {
                    free(pre), free(drop), lines_free(&ls);
                    return -1;
                }
                r = try_schedule(x, cand, taken, want);
                replays++;
                if (r < 0) {
                    free(pre), free(drop), lines_free(&ls);
                    return -1;
                }
                if (r) {
                    char *t = read_all(taken, NULL);
                    if (t && count_preempts(t) < np && !copy_file(taken, best))
                        improved = 1;
                    free(t);
                }
            }
            if (chunk == 1)
                break;
        }
        free(pre), free(drop), lines_free(&ls);
        if (!improved)
            return replays;
    }
}

/* The bounded search after the deletions.  Deleting a line shifts the steps of the lines after
 * it (a step is counted over all threads), so deletions alone often cannot reach a schedule
 * with fewer preemptions that is a different interleaving (the bug's two threads meeting
 * directly rather than through a third).  The search builds schedules from the default one:
 * level c holds the schedules of c preemptions, each a level c-1 schedule plus one preemption
 * at a later step to some thread, kept only if the replay took it as a preemption at a place
 * (`where`) where the failing schedules preempted too.  Level by level up to one fewer than
 * the deletions left, within SEARCH_BUDGET replays; the first schedule that fails the same
 * way wins (it has the fewest preemptions of all those tried). */
#define SEARCH_BUDGET 1500
#define MAX_THREADS 32

typedef struct {
    int n;                              /* preemptions */
    unsigned long step[64];
    char thread[64][16];
    unsigned long steps;                /* the run's step count */
} candidate;

/* The preempt lines' `where` fields and the chosen threads of schedule `path`, added to the
 * sets (as long as there is room). */
static void collect(const char *path, char (*wheres)[256], int *nw, int maxw,
                    char (*threads)[16], int *nt)
{
    lines ls;
    if (lines_read(path, &ls) == 0)
        for (int i = 0; i < ls.n; i++) {
            unsigned long step;
            char thread[16], kind[32], where[256];
            if (sscanf(ls.line[i], "%lu %15s %31s %255[^\n]", &step, thread, kind, where) != 4)
                continue;
            int k = 0;
            while (k < *nt && strcmp(threads[k], thread))
                k++;
            if (k == *nt && *nt < MAX_THREADS)
                strcpy(threads[(*nt)++], thread);
            if (strcmp(kind, "preempt"))
                continue;
            k = 0;
            while (k < *nw && strcmp(wheres[k], where))
                k++;
            if (k == *nw && *nw < maxw)
                strcpy(wheres[(*nw)++], where);
        }
    lines_free(&ls);
}

/* Writes candidate `c` as a schedule file. */
static int write_candidate(const char *path, const candidate *c)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    fprintf(fp, "gilvm-schedule 1\n# step thread kind where\n");
    for (int i = 0; i < c->n; i++)
        fprintf(fp, "%lu %s preempt -\n", c->step[i], c->thread[i]);
    return cli_output_close(fp, path);
}

/* Looks for a schedule with fewer than `limit` preemptions that fails as `want`, around the
 * places of the failing schedules `a` and `b`; 1 if found (left in `best`), 0 if not, -1 if
 * a run could not start.  *replays counts the runs. */
static int search(explore *x, const char *a, const char *b, int limit, const char *best,
                  const failure *want, int *replays)
{
    static char wheres[256][256];
    char threads[MAX_THREADS][16];
    int nw = 0, nt = 0;
    collect(a, wheres, &nw, 256, threads, &nt);
    collect(b, wheres, &nw, 256, threads, &nt);
    if (!nt)
        strcpy(threads[nt++], "1");
    char cand[PATH_MAX], taken[PATH_MAX];
    snprintf(cand, sizeof cand, "%s/cand.schedule", x->tmp);
    snprintf(taken, sizeof taken, "%s/taken.schedule", x->tmp);
    candidate *level = calloc(1, sizeof *level), *next = NULL;
    int nlevel = 1, nnext = 0, cap = 0, lcap = 1, found = 0;
    if (!level)
        return -1;
    /* level 0: the default schedule */
    if (write_candidate(cand, &level[0]))
        goto fail;
    int r = try_schedule(x, cand, taken, want);
    ++*replays;
    if (r < 0)
        goto fail;
    if (r) {
        found = copy_file(taken, best) ? -1 : 1;
        goto done;
    }
    uint64_t dg;
    schedule_header(taken, &level[0].steps, &dg);
    for (int c = 1; c < limit && nlevel && !found; c++) {
        nnext = 0;
        for (int i = 0; i < nlevel && !found; i++) {
            candidate *base = &level[i];
            unsigned long from = base->n ? base->step[base->n - 1] + 1 : 1;
            for (unsigned long st = from; st <= base->steps && !found; st++)
                for (int k = 0; k < nt && !found; k++) {
                    if (*replays >= SEARCH_BUDGET)
                        goto done;
                    candidate cd = *base;
                    if (cd.n >= 64)
                        goto done;
                    cd.step[cd.n] = st;
                    strcpy(cd.thread[cd.n], threads[k]);
                    cd.n++;
                    if (write_candidate(cand, &cd))
                        goto fail;
                    r = try_schedule(x, cand, taken, want);
                    ++*replays;
                    if (r < 0)
                        goto fail;
                    /* taken as a preemption at st, at a place the failing runs preempted? */
                    lines ls;
                    int applied = 0, preempts = 0;
                    if (lines_read(taken, &ls) == 0)
                        for (int j = 0; j < ls.n; j++) {
                            unsigned long s2;
                            char t2[16], kind[32], where[256];
                            if (sscanf(ls.line[j], "%lu %15s %31s %255[^\n]", &s2, t2, kind,
                                       where) != 4 || strcmp(kind, "preempt"))
                                continue;
                            preempts++;
                            if (s2 == st && !strcmp(t2, threads[k]))
                                for (int w = 0; w < nw; w++)
                                    applied |= !strcmp(wheres[w], where);
                        }
                    lines_free(&ls);
                    if (!applied || preempts != cd.n)
                        continue;
                    if (r) {
                        found = copy_file(taken, best) ? -1 : 1;
                        break;
                    }
                    schedule_header(taken, &cd.steps, &dg);
                    if (nnext == cap) {
                        cap = cap ? 2 * cap : 64;
                        candidate *more = realloc(next, (size_t)cap * sizeof *more);
                        if (!more)
                            goto fail;
                        next = more;
                    }
                    next[nnext++] = cd;
                }
        }
        candidate *t = level;          /* swap: the next level becomes this one */
        int tcap = lcap;
        level = next;
        lcap = cap;
        nlevel = nnext;
        next = t;
        cap = tcap;
    }
done:
    free(level);
    free(next);
    return found;
fail:
    free(level);
    free(next);
    return -1;
}

/* Prints the text of line `n` of file `path`, trimmed and indented, if it reads. */
static void put_source_line(const char *path, unsigned long n)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    char buf[512];
    unsigned long k = 0;
    while (fgets(buf, sizeof buf, fp)) {
        size_t len = strlen(buf);
        int whole = len && buf[len - 1] == '\n';
        if (++k == n) {
            char *b = buf + strspn(buf, " \t");
            b[strcspn(b, "\r\n")] = 0;
            if (*b)
                printf("      %s\n", b);
            break;
        }
        while (!whole && fgets(buf, sizeof buf, fp))    /* the rest of a long line */
            whole = (len = strlen(buf)) && buf[len - 1] == '\n';
    }
    fclose(fp);
}

/* Prints the preemption points of schedule `path` as "  FILE:LINE  (step N: ...)", each
 * followed by that line of the program when FILE is the program's name. */
static void put_preemptions(explore *x, const char *path)
{
    const char *prog = x->argv[0], *base = strrchr(prog, '/');
    base = base ? base + 1 : prog;
    lines ls;
    if (lines_read(path, &ls) == 0)
        for (int i = 0; i < ls.n; i++) {
            unsigned long step, line;
            char thread[32], where[512];
            if (!is_preempt(ls.line[i]) ||
                sscanf(ls.line[i], "%lu %31s %*s %511[^\n]", &step, thread, where) != 3)
                continue;
            printf("  %s  (step %lu: preempted, thread %s runs)\n", where, step, thread);
            /* where is "FILE:LINE", or "PRIMITIVE FILE:LINE" */
            char *loc = strrchr(where, ' ');
            loc = loc ? loc + 1 : where;
            char *colon = strrchr(loc, ':');
            if (colon && sscanf(colon + 1, "%lu", &line) == 1 &&
                (size_t)(colon - loc) == strlen(base) && !strncmp(loc, base, strlen(base)))
                put_source_line(prog, line);
        }
    lines_free(&ls);
}

/* Minimizes schedule `sched`, which failed as `want`: writes the result to `name` and its
 * trace to `trace`, prints its preemption points and the replay command; 0, or -1 with one
 * line printed on stderr. */
static int minimize(explore *x, const char *sched, const char *name, const char *trace,
                    const failure *want)
{
    char best[PATH_MAX];
    snprintf(best, sizeof best, "%s/best.schedule", x->tmp);
    char *orig = read_all(sched, NULL);
    int before = orig ? count_preempts(orig) : 0;
    free(orig);
    fflush(stdout);
    int replays = shrink(x, sched, best, want);
    if (replays < 0)
        return explore_error("--minimize: %s", strerror(errno)), -1;
    char *b = read_all(best, NULL);
    int left = b ? count_preempts(b) : 0;
    free(b);
    char found[PATH_MAX];
    snprintf(found, sizeof found, "%s/found.schedule", x->tmp);
    int r = left > 1 ? search(x, sched, best, left, found, want, &replays) : 0;
    if (r < 0)
        return explore_error("--minimize: %s", strerror(errno)), -1;
    if (r && copy_file(found, best))
        return explore_error("--minimize: %s", strerror(errno)), -1;
    if (copy_file(best, name))
        return explore_error("can't write the minimized schedule: %s", strerror(errno)), -1;
    char *t = read_all(best, NULL);
    int after = t ? count_preempts(t) : 0;
    free(t);
    printf("minimized: %d preemption%s -> %d (%d replays); %s\n", before,
           before == 1 ? "" : "s", after, replays,
           after ? "the preemption points:" : "it fails with no preemption at all");
    put_preemptions(x, best);
    printf("schedule: %s\n", name);
    write_trace(x, name, trace, want->o);
    put_replay(x, name);
    return 0;
}

/* ---- exploring ---- */

/* Reports the failing run of slot `s` (stdout), writes its schedule and trace; minimizes if
 * asked.  The exit status. */
static int report_failure(explore *x, slot *s, outcome o)
{
    char d[160], tag[48], name[PATH_MAX], trace[PATH_MAX];
    describe(o, x->timeout_s, d, sizeof d);
    if (!o.timed_out && (o.code == 2 || o.code == 65)) {
        /* not a schedule's doing: the program does not load, or the options are wrong */
        fflush(stdout);
        char *e = read_all(s->err, NULL);
        fprintf(stderr, "%s", e && *e ? e : "");
        free(e);
        return explore_error("the run ended with exit status %s (a usage error or a program "
                             "that does not load), not a failure of a schedule",
                             o.code == 2 ? "2" : "65");
    }
    snprintf(tag, sizeof tag, "-seed%llu", s->seed);
    out_name(x, name, sizeof name, tag, ".schedule");
    out_name(x, trace, sizeof trace, tag, ".trace.json");
    printf("explore: run %llu failed (seed %llu, strategy %s): %s\n", s->seed - x->seed0 + 1,
           s->seed, x->strategy, d);
    put_tail(s->out, "stdout", 0);
    put_tail(s->err, "stderr", 1);
    struct stat st;
    if (stat(s->sched, &st)) {
        /* a run killed at its time-out writes none: show the command that reruns its seed */
        char opt[64];
        snprintf(opt, sizeof opt, "--schedule=%s:%llu", x->strategy, s->seed);
        printf("schedule: (none: the run wrote no schedule file)\n");
        put_command(x, "rerun:    ", opt);
        return 1;
    }
    if (copy_file(s->sched, name)) {
        fprintf(stderr, "gilvm: explore: can't write '%s': %s\n", name, strerror(errno));
        return 1;
    }
    char *text = read_all(name, NULL);
    unsigned long steps = 0;
    uint64_t dg = 0;
    schedule_header(name, &steps, &dg);
    int np = text ? count_preempts(text) : 0;
    free(text);
    printf("schedule: %s (%lu steps, %d preemption%s)\n", name, steps, np, np == 1 ? "" : "s");
    if (!o.timed_out)
        write_trace(x, name, trace, o);
    put_replay(x, name);
    if (x->minimize && !o.timed_out) {
        char mtag[64], mname[PATH_MAX], mtrace[PATH_MAX];
        snprintf(mtag, sizeof mtag, "%s.min", tag);
        out_name(x, mname, sizeof mname, mtag, ".schedule");
        out_name(x, mtrace, sizeof mtrace, mtag, ".trace.json");
        failure f;
        failure_of(o, s->err, &f);
        minimize(x, name, mname, mtrace, &f);
    }
    return 1;
}

static void progress(explore *x, unsigned long long ndone, double t0, int final)
{
    double dt = now_s() - t0;
    fprintf(stderr, "\r\033[Kexplore: %llu/%llu runs, %.0f runs/s, %zu distinct schedules%s",
            ndone, x->iterations, dt > 0 ? ndone / dt : 0.0, x->set_n, final ? "\n" : "");
}

/* Records seed `seed`'s steps; moves `low` past the finished seeds. */
static void seed_done(explore *x, unsigned long long seed, unsigned long steps)
{
    x->done[seed % RING] = 1;
    x->steps[seed % RING] = steps;
    if (seed == x->seed0)
        x->first_steps = steps;
    while (x->done[x->low % RING] && x->low - x->seed0 < x->iterations) {
        unsigned long prev = x->low == x->seed0 ? 0 : x->prefmax[(x->low - 1) % RING];
        unsigned long s = x->steps[x->low % RING];
        x->prefmax[x->low % RING] = s > prev ? s : prev;
        x->done[x->low % RING] = 0;
        x->low++;
    }
}

/* PCT's k for `seed`, or 0 if it cannot start yet (the seeds it depends on are running). */
static unsigned long pct_steps(explore *x, unsigned long long seed)
{
    if (seed == x->seed0)
        return 1000;
    if (seed - x->seed0 <= K_WINDOW)
        return x->low > x->seed0 ? (x->first_steps ? x->first_steps : 1) : 0;
    unsigned long long upto = seed - K_WINDOW - 1;
    if (x->low <= upto)
        return 0;
    unsigned long k = x->prefmax[upto % RING];
    return k ? k : 1;
}

static int explore_runs(explore *x)
{
    slot *slots = calloc((size_t)x->jobs, sizeof *slots);
    if (!slots)
        return explore_error("%s", "out of memory");
    for (int j = 0; j < x->jobs; j++) {
        snprintf(slots[j].sched, sizeof slots[j].sched, "%s/%d.schedule", x->tmp, j);
        snprintf(slots[j].out, sizeof slots[j].out, "%s/%d.out", x->tmp, j);
        snprintf(slots[j].err, sizeof slots[j].err, "%s/%d.err", x->tmp, j);
    }
    int tty = isatty(2);
    double t0 = now_s(), last_shown = 0;
    unsigned long long next = x->seed0, ndone = 0;
    int active = 0, fail = -1;          /* fail: the slot of the lowest failing seed */
    outcome fail_o = {0};
    x->low = x->seed0;
    int rc = 0;
    for (;;) {
        while (fail < 0 && active < x->jobs && next - x->seed0 < x->iterations) {
            unsigned long k = x->pct ? pct_steps(x, next) : 1;
            if (!k)
                break;
            int j = 0;
            while (slots[j].pid)       /* a free slot: one exists, since active < jobs */
                j++;
            char so[PATH_MAX + 24], sc[64], ks[48];
            snprintf(sc, sizeof sc, "--schedule=%s:%llu", x->strategy, next);
            snprintf(so, sizeof so, "--schedule-out=%s", slots[j].sched);
            snprintf(ks, sizeof ks, "--schedule-steps=%lu", k);
            const char *opts[] = {sc, so, x->pct ? ks : NULL, NULL};
            unlink(slots[j].sched);
            pid_t pid = start_run(x, opts, slots[j].out, slots[j].err, j);
            if (pid < 0) {
                rc = explore_error("can't start a run: %s", strerror(errno));
                goto out;
            }
            slots[j].pid = pid;
            slots[j].seed = next;
            slots[j].deadline = now_s() + x->timeout_s;
            slots[j].killed = slots[j].timed_out = 0;
            next++;
            active++;
        }
        if (!active)
            break;
        /* sleep until a child ends, the nearest deadline, or the next progress update */
        double now = now_s(), wake = now + 3600;
        for (int j = 0; j < x->jobs; j++)
            if (slots[j].pid > 0 && !slots[j].timed_out && slots[j].deadline < wake)
                wake = slots[j].deadline;
        if (tty && wake > now + 0.1)
            wake = now + 0.1;
        double left = wake - now;
        if (left > 0)
            wait_signal(left);
        if (stopping())
            break;
        now = now_s();
        for (int j = 0; j < x->jobs; j++)
            if (slots[j].pid > 0 && !slots[j].timed_out && !slots[j].killed &&
                now >= slots[j].deadline) {
                kill(slots[j].pid, SIGKILL);
                slots[j].timed_out = 1;
            }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            int j = 0;
            while (j < x->jobs && slots[j].pid != pid)      /* pid > 0: never a kept slot */
                j++;
            if (j == x->jobs)
                continue;               /* not ours */
            slot *s = &slots[j];
            s->pid = 0;
            active--;
            if (s->killed)
                continue;
            outcome o = outcome_of(status, s->timed_out);
            note_thread_exc(&o, s->err);
            unsigned long steps = 0;
            uint64_t dg = 0;
            if (!schedule_header(s->sched, &steps, &dg))
                digest_add(x, dg);
            ndone++;
            seed_done(x, s->seed, steps);
            if (failed(o) && !stopping() && (fail < 0 || s->seed < slots[fail].seed)) {
                fail = j;
                fail_o = o;
                s->pid = -1;            /* keep its files: not reused */
                for (int k = 0; k < x->jobs; k++)
                    if (slots[k].pid > 0 && slots[k].seed > s->seed && !slots[k].killed) {
                        kill(slots[k].pid, SIGKILL);
                        slots[k].killed = 1;
                    }
            }
        }
        if (tty && now_s() - last_shown >= 0.1) {
            progress(x, ndone, t0, 0);
            last_shown = now_s();
        }
    }
    if (tty)
        fputs("\r\033[K", stderr);
    double dt = now_s() - t0;
    if (stopping())
        fprintf(stderr, "gilvm: explore: interrupted after %llu runs (seeds %llu..)\n", ndone,
                x->seed0);
    else if (fail >= 0)
        rc = report_failure(x, &slots[fail], fail_o);
    else
        printf("explore: no failure in %llu runs (seeds %llu..%llu, strategy %s): %zu distinct "
               "schedules, %.0f runs/s\n", ndone, x->seed0, x->seed0 + ndone - 1, x->strategy,
               x->set_n, dt > 0 ? ndone / dt : 0.0);
out:
    for (int j = 0; j < x->jobs; j++)
        if (slots[j].pid > 0) {
            kill(slots[j].pid, SIGKILL);
            waitpid(slots[j].pid, NULL, 0);
        }
    free(slots);
    return rc;
}

/* `--minimize=SCHEDULE FILE`: replays SCHEDULE; minimizes it if the run fails. */
static int minimize_given(explore *x)
{
    char ro[PATH_MAX + 16], out[PATH_MAX + 8], err[PATH_MAX + 8];
    snprintf(ro, sizeof ro, "--replay=%s", x->minimize_file);
    snprintf(out, sizeof out, "%s/given.out", x->tmp);
    snprintf(err, sizeof err, "%s/given.err", x->tmp);
    const char *opts[] = {ro, NULL};
    outcome o;
    if (run_wait(x, opts, out, err, &o))
        return explore_error("can't start a run: %s", strerror(errno));
    if (!o.timed_out && (o.code == 2 || o.code == 65)) {
        char *e = read_all(err, NULL);
        fprintf(stderr, "%s", e && *e ? e : "");
        free(e);
        return explore_error("%s", "the replay ended with a usage or load error");
    }
    if (!failed(o)) {
        printf("explore: the replay of %s does not fail: nothing to minimize\n",
               x->minimize_file);
        return 0;
    }
    if (o.timed_out)
        return explore_error("%s", "the replay timed out: a time-out cannot be minimized");
    char d[160];
    describe(o, x->timeout_s, d, sizeof d);
    printf("explore: the replay of %s fails: %s\n", x->minimize_file, d);
    /* named after the schedule file: X.schedule gives X.min.schedule and X.min.trace.json */
    static const char *const ext[] = {".schedule", NULL};
    failure f;
    failure_of(o, err, &f);
    char name[PATH_MAX], trace[PATH_MAX];
    out_path(x, name, sizeof name, x->minimize_file, ext, ".min", ".schedule");
    out_path(x, trace, sizeof trace, x->minimize_file, ext, ".min", ".trace.json");
    return minimize(x, x->minimize_file, name, trace, &f) ? 2 : 1;
}

/* Where explore's temporary folder goes: $TMPDIR; else /dev/shm, a file system in memory,
 * if it has 1 GiB free (a run rewrites its slot's files: on a disk file system such as ext4
 * each rewrite costs journal and writeback work, about a third of explore's rate); else /tmp. */
static const char *tmp_parent(void)
{
    const char *td = getenv("TMPDIR");
    if (td && *td && strlen(td) < sizeof ((explore *)0)->tmp - 24)
        return td;
#ifdef __linux__
    struct statvfs sv;
    if (!access("/dev/shm", W_OK | X_OK) && !statvfs("/dev/shm", &sv) &&
        (double)sv.f_bavail * sv.f_frsize >= 1024.0 * 1024 * 1024)
        return "/dev/shm";
#endif
    return "/tmp";
}

static void remove_tmp(const char *dir)
{
    char path[PATH_MAX + 300];
    static const char *const names[] = {"schedule", "out", "err"};
    for (int j = 0; j < MAX_JOBS; j++)
        for (int k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/%d.%s", dir, j, names[k]);
            unlink(path);
        }
    static const char *const others[] = {"trace.out", "trace.err", "min.out", "min.err",
                                         "given.out", "given.err", "cand.schedule",
                                         "taken.schedule", "best.schedule", "found.schedule"};
    for (size_t k = 0; k < sizeof others / sizeof *others; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, others[k]);
        unlink(path);
    }
    rmdir(dir);
}

int vm_explore_main(const char *prog, int argc, char **argv)
{
    /* the runs' stdout is a file, fully buffered: so is explore's (see the Notes) */
    setvbuf(stdout, NULL, _IOFBF, BUFSIZ);
    explore *x = calloc(1, sizeof *x);
    if (!x)
        return explore_error("%s", "out of memory");
    x->prog = prog;
    strcpy(x->strategy, "random");
    x->iterations = 1000;
    x->seed0 = (unsigned long long)time(NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    x->jobs = cpus < 1 ? 1 : cpus > MAX_JOBS ? MAX_JOBS : (int)cpus;
    x->timeout_s = 10;
    int rc = parse_args(x, argc, argv);
    if (rc) {
        free(x);
        return rc == 1 ? 0 : rc;
    }
    if (x->minimize_file && access(x->minimize_file, R_OK)) {
        rc = explore_error("can't read the schedule '%s'", x->minimize_file);
        free(x);
        return rc;
    }
    if (access(x->argv[0], R_OK)) {
        rc = explore_error("can't open '%s'", x->argv[0]);
        free(x);
        return rc;
    }
    /* SIGCHLD, SIGINT and SIGTERM stay pending for sigtimedwait (the runs start with an empty
     * mask), so a Ctrl-C ends explore through its cleanup */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, &old);
    const char *td = tmp_parent();
    snprintf(x->tmp, sizeof x->tmp, "%s/gilvm-explore.XXXXXX", td);
    if (!mkdtemp(x->tmp)) {
        rc = explore_error("can't make a temporary folder: %s", strerror(errno));
        free(x);
        sigprocmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    rc = x->minimize_file ? minimize_given(x) : explore_runs(x);
    fflush(stdout);
    remove_tmp(x->tmp);
    free(x->set);
    free(x);
    if (stopping()) {
        /* die of the signal, as an interrupted program should (the shell sees it) */
        signal(stop_signal, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        raise(stop_signal);
        return 128 + stop_signal;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}
