/* SPDX-License-Identifier: MIT */
/* The gilvm command line: run, asm, dis, repl; options; exit statuses (docs/cli.md). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/api/run.h"
#include "vm/api/gilvm.h"
#include "vm/api/instruments.h"
#include "vm/api/schedule.h"
#include "vm/cli/cmdline.h"
#include "vm/cli/explore.h"
#include "vm/cli/repl.h"
#include "vm/cli/traceview.h"

static const char usage_text[] =
    "usage: gilvm [OPTIONS] FILE [ARGS...]   run a .gasm or .gbc file (same as: gilvm run FILE)\n"
    "       gilvm [OPTIONS] -c SOURCE [ARGS...]  run assembly source given as an argument\n"
    "       gilvm [OPTIONS] - [ARGS...]      run the program read from stdin\n"
    "       gilvm [OPTIONS]                  interactive REPL (also: gilvm repl, gilvm -i FILE)\n"
    "       gilvm asm IN.gasm [-o OUT.gbc]   assemble to a bytecode file\n"
    "       gilvm dis FILE                   disassemble a .gbc or .gasm file\n"
    "       gilvm trace-view TRACE.json -o OUT.html  a --trace file as an HTML timeline\n"
    "       gilvm explore [--strategy=S] [--iterations=N] [--seed=S0] [--jobs=J]\n"
    "                     [--timeout=SECS] [--out-dir=DIR] [--minimize[=SCHEDULE]] FILE [ARGS...]\n"
    "                                        run FILE under successive schedules until one fails\n"
    "\n"
    "options:\n"
    "  -c SOURCE              run SOURCE (assembly); ends the options, argv()[0] is '-c'\n"
    "  -i                     enter the REPL after running FILE\n"
    "  --switch-interval=T    GIL switch interval, e.g. 5ms, 200us, 0.01s (default 5ms)\n"
    "  --stats[=json]         print GIL and thread statistics to stderr at exit\n"
    "  --trace=FILE.json      write a Chrome Trace Event file of GIL activity (Perfetto)\n"
    "  --recursion-limit=N    maximum bytecode recursion depth (default 1000)\n"
    "  --max-instructions=N   stop the program after N instructions (LimitExceeded, 124)\n"
    "  --timeout=T            stop the program after T, e.g. 10s, 500ms (LimitExceeded, 124)\n"
    "  --max-memory=SIZE      cap its heap, e.g. 64M, 1G, 4096 (then MemoryError)\n"
    "  --no-ffi               disable native calls (the ffi_* builtins raise RuntimeError)\n"
    "  --schedule=S           controlled scheduling: random[:SEED] or pct[:DEPTH[:SEED]]\n"
    "  --schedule-steps=N     PCT's estimate of the scheduling points of a run (default 1000)\n"
    "  --schedule-out=FILE    write the run's schedule to FILE at exit\n"
    "  --replay=FILE          run under the schedule in FILE (written by --schedule-out)\n"
    "  --version              print the version and exit\n"
    "  -h, --help             print this help and exit\n"
    "  (an option's value may also come as the next argument: --timeout 10s)\n"
    "\n"
    "exit status: 0 ok, 1 uncaught exception, 2 usage error, 65 malformed or rejected input,\n"
    "3 deadlock (every thread waits for good), 124 a limit exceeded, 130 uncaught KeyboardInterrupt (SIGINT), or the code given to\n"
    "SystemExit\n";

#define usage_error cli_usage_error

/* Parses "5ms", "200us", "0.01s", "0.005" (seconds) into microseconds; 0 if invalid. */
static unsigned long parse_interval(const char *s, int *bad)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double scale = 1e6;
    if (end == s || errno)
        return *bad = 1, 0;
    if (!strcmp(end, "ms"))
        scale = 1e3;
    else if (!strcmp(end, "us"))
        scale = 1;
    else if (strcmp(end, "s") && *end)
        return *bad = 1, 0;
    double us = v * scale;
    if (!(us > 0) || us > 1e12)
        return *bad = 1, 0;
    return us < 1 ? 1 : (unsigned long)(us + 0.5);
}

/* Parses a count with an optional K, M or G suffix (powers of 1024 if `binary`, else of
 * 1000); 0 if invalid or 0. */
static unsigned long long parse_count(const char *s, int binary)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    unsigned long long k = binary ? 1024 : 1000, scale = 1;
    if (end == s || errno || *s == '-')
        return 0;
    if (*end && !end[1]) {
        switch (*end) {
        case 'k': case 'K': scale = k; break;
        case 'm': case 'M': scale = k * k; break;
        case 'g': case 'G': scale = k * k * k; break;
        default: return 0;
        }
    } else if (*end)
        return 0;
    return n > ULLONG_MAX / scale ? 0 : n * scale;
}

/* Writes `len` bytes to `path`, whole or not at all; 0, or -1 with errno set. */
static int write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    fwrite(data, 1, len, fp);
    return cli_output_close(fp, path);
}

static int cmd_asm(int argc, char **argv)
{
    const char *in, *out;
    int bad = cli_in_out(argc, argv, "asm", &in, &out);
    if (bad)
        return bad;
    char *derived = NULL;
    if (!out) {                         /* IN with .gasm replaced by .gbc */
        size_t n = strlen(in);
        derived = malloc(n + 5);
        if (!derived)
            return GILVM_EXIT_EXCEPTION;
        memcpy(derived, in, n + 1);
        if (n > 5 && !strcmp(in + n - 5, ".gasm"))
            derived[n - 5] = 0;
        strcat(derived, ".gbc");
        out = derived;
        if ((bad = cli_not_input("asm", in, out))) {
            free(derived);
            return bad;
        }
    }
    if (gilvm_runtime_init(NULL)) {
        free(derived);
        return GILVM_EXIT_EXCEPTION;
    }
    vm_module m;
    char err[1024];
    int rc = vm_load_file(vm_main_thread(), in, &m, err, sizeof err);
    if (rc)
        fprintf(stderr, "gilvm: %s\n", err);
    else {
        size_t len;
        uint8_t *img = vm_bc_write(&m, &len);
        vm_module_free(&m);
        if (!img) {
            fprintf(stderr, "gilvm: can't write '%s': out of memory\n", out);
            rc = GILVM_EXIT_EXCEPTION;
        } else if (write_file(out, img, len)) {
            fprintf(stderr, "gilvm: can't write '%s': %s\n", out, strerror(errno));
            rc = GILVM_EXIT_EXCEPTION;
        }
        vm_free(img);
    }
    free(derived);
    return gilvm_runtime_finalize(rc);
}

static int cmd_dis(int argc, char **argv)
{
    if (argc != 1)
        return usage_error("%s", "dis: expected exactly one file");
    if (gilvm_runtime_init(NULL))
        return GILVM_EXIT_EXCEPTION;
    vm_module m;
    char err[1024];
    int rc = vm_load_file(vm_main_thread(), argv[0], &m, err, sizeof err);
    if (rc)
        fprintf(stderr, "gilvm: %s\n", err);
    else {
        if (dis_module(stdout, &m) || fflush(stdout)) {
            fprintf(stderr, "gilvm: dis: write error: %s\n", strerror(errno));
            rc = GILVM_EXIT_EXCEPTION;
        }
        vm_module_free(&m);
    }
    return gilvm_runtime_finalize(rc);
}

/* `gilvm -`: reads the whole of stdin (a terminal too, up to EOF) and loads it as the
 * program "<stdin>"; 0, GILVM_EXIT_USAGE (a read error) or GILVM_EXIT_DATAERR. */
static int load_stdin(vm_thread *t, vm_module *m, char *err, size_t errlen)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            snprintf(err, errlen, "<stdin>: out of memory");
            return GILVM_EXIT_USAGE;
        }
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap) {
            if (ferror(stdin)) {
                snprintf(err, errlen, "<stdin>: %s", strerror(errno));
                free(buf);
                return GILVM_EXIT_USAGE;
            }
            break;
        }
        char *more = realloc(buf, 2 * cap + 1);
        if (!more)
            free(buf);
        buf = more;
        cap *= 2;
    }
    buf[n] = 0;
    int rc = vm_load_source(t, "<stdin>", buf, n, m, err, errlen) ? GILVM_EXIT_DATAERR : 0;
    free(buf);
    return rc;
}

int cli_main(int argc, char **argv)
{
    gilvm_config cfg = {0};
    gilvm_limits limits = {0};
    vm_instruments_config icfg = {0};
    int interactive = 0, i = 1;
    const char *command = NULL;         /* -c SOURCE */
    vm_schedule_options sched = {0};

    if (argc > 1 && !strcmp(argv[1], "asm"))
        return cmd_asm(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "dis"))
        return cmd_dis(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "trace-view"))
        return vm_trace_view_main(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "explore"))
        return vm_explore_main(argv[0], argc - 2, argv + 2);

    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("gilvm %s\n", GILVM_VERSION);
            return 0;
        } else if (!strcmp(a, "-i"))
            interactive = 1;
        else if (!strncmp(a, "-c", 2)) {
            /* -c SOURCE or -cSOURCE ends the options, as in python; argv()[0] is "-c". */
            if (a[2])
                command = a + 2;
            else if (i + 1 < argc)
                command = argv[++i];
            else
                return usage_error("%s", "option -c needs an argument (the program's source)");
            argv[i] = "-c";
            break;
        }
        else if ((v = cli_opt_value(argc, argv, &i, "--switch-interval"))) {
            int bad = 0;
            cfg.switch_interval_us = parse_interval(v, &bad);
            if (bad)
                return usage_error("invalid --switch-interval '%s' (use e.g. 5ms, 200us, 0.01s)",
                                   v);
        } else if (!strcmp(a, "--stats"))
            icfg.stats = VM_STATS_TEXT;
        else if (!strcmp(a, "--stats=json"))
            icfg.stats = VM_STATS_JSON;
        else if (!strncmp(a, "--stats=", 8))
            return usage_error("invalid --stats format '%s' (use --stats or --stats=json)", a + 8);
        else if ((v = cli_opt_value(argc, argv, &i, "--trace"))) {
            size_t n = strlen(v);
            if (!n)
                return usage_error("%s", "--trace needs a file name (--trace=FILE.json)");
            /* "--trace prog.gasm" with the trace's name forgotten would overwrite the program */
            if ((n > 5 && !strcmp(v + n - 5, ".gasm")) || (n > 4 && !strcmp(v + n - 4, ".gbc")))
                return usage_error("--trace: '%s' is a program, not a trace file "
                                   "(--trace=FILE.json)", v);
            icfg.trace_path = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--recursion-limit"))) {
            char *end;
            long n = strtol(v, &end, 10);
            if (end == v || *end || n < 1 || n > 10000000)
                return usage_error("invalid --recursion-limit '%s' (1 to 10000000)", v);
            cfg.recursion_limit = (int)n;
        } else if ((v = cli_opt_value(argc, argv, &i, "--max-instructions"))) {
            if (!(limits.max_instructions = parse_count(v, 0)))
                return usage_error("invalid --max-instructions '%s' (a positive count, e.g. "
                                   "1000000 or 5M)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--timeout"))) {
            int bad = 0;
            unsigned long us = parse_interval(v, &bad);
            if (bad)
                return usage_error("invalid --timeout '%s' (use e.g. 10s, 500ms)", v);
            limits.timeout_ms = us < 1000 ? 1 : (us + 500) / 1000;
        } else if ((v = cli_opt_value(argc, argv, &i, "--max-memory"))) {
            if (!(limits.max_memory = parse_count(v, 1)))
                return usage_error("invalid --max-memory '%s' (bytes, e.g. 65536, 64M, 1G)", v);
        } else if (!strcmp(a, "--no-ffi"))
            cfg.no_ffi = 1;
        else if ((v = cli_opt_value(argc, argv, &i, "--schedule"))) {
            char msg[256];
            if (vm_schedule_parse(v, &sched, msg, sizeof msg))
                return usage_error("%s", msg);
        } else if ((v = cli_opt_value(argc, argv, &i, "--schedule-steps"))) {
            if (!(sched.steps_estimate = parse_count(v, 0)))
                return usage_error("invalid --schedule-steps '%s' (a positive count)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--schedule-out"))) {
            if (!*v)
                return usage_error("%s", "--schedule-out needs a file name");
            sched.out_path = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--replay"))) {
            if (!*v)
                return usage_error("%s", "--replay needs a schedule file");
            sched.replay_path = v;
        }
        else
            return usage_error("unknown option '%s'", a);
    }

    int repl = 0;
    if (command)
        ;                               /* argv[i] is "-c", then the program's arguments */
    else if (i < argc && !strcmp(argv[i], "run")) {
        if (++i >= argc)
            return usage_error("%s", "run: missing file");
    } else if (i < argc && !strcmp(argv[i], "repl")) {
        if (i + 1 < argc)
            return usage_error("repl: unexpected argument '%s'", argv[i + 1]);
        repl = 1;
        i++;
    }
    const char *file = command ? "<string>" : i < argc ? argv[i] : NULL;
    if (!file)
        repl = 1;
    if (interactive)
        repl = 1;

    if (sched.replay_path && sched.strategy)
        return usage_error("%s", "--replay and --schedule exclude each other");
    if ((sched.out_path || sched.steps_estimate) && !sched.strategy && !sched.replay_path)
        return usage_error("%s", "--schedule-out and --schedule-steps need --schedule or --replay");
    if ((sched.strategy || sched.replay_path) && !file)
        return usage_error("%s", "--schedule and --replay need a program file");
    {
        char msg[512];
        if (vm_schedule_prepare(&sched, msg, sizeof msg))
            return usage_error("%s", msg);
    }
    if (gilvm_runtime_init(&cfg))
        return GILVM_EXIT_EXCEPTION;
    if ((limits.max_instructions || limits.timeout_ms || limits.max_memory) &&
        gilvm_set_limits(&limits)) {
        fprintf(stderr, "gilvm: can't set the limits\n");
        gilvm_runtime_finalize(0);
        return GILVM_EXIT_EXCEPTION;
    }
    /* The instruments start once the program has loaded: a usage or data error writes no
     * trace file and prints no statistics (docs/cli.md). */
    vm_thread *t = vm_main_thread();
    vm_module m;
    char err[1024];
    int rc = 0;
    if (command)
        rc = vm_load_source(t, "<string>", command, strlen(command), &m, err, sizeof err)
                 ? GILVM_EXIT_DATAERR : 0;
    else if (file && !strcmp(file, "-"))
        rc = load_stdin(t, &m, err, sizeof err);
    else if (file)
        rc = vm_load_file(t, file, &m, err, sizeof err);
    if (rc) {
        fprintf(stderr, "gilvm: %s\n", err);
        return gilvm_runtime_finalize(rc);
    }
    if (vm_instruments_start(&icfg)) {
        if (file)
            vm_module_free(&m);
        gilvm_runtime_finalize(0);
        return GILVM_EXIT_USAGE;
    }
    if (file) {
        gilvm_set_argv(argc - i, argv + i);
        if (vm_schedule_start(t, file)) {
            vm_module_free(&m);
            return gilvm_runtime_finalize(GILVM_EXIT_EXCEPTION);
        }
        if (!repl)                      /* a program run: not the REPL, nor -i */
            vm_schedule_watch_deadlocks();
        rc = vm_run_module(t, &m);
    } else
        gilvm_set_argv(1, (char *[]){""});
    if (repl && (!file || rc == 0 || rc == GILVM_EXIT_EXCEPTION))
        rc = vm_repl_main(vm_main_thread());
    rc = gilvm_runtime_finalize(rc);
    if (rc == GILVM_EXIT_SIGINT) {
        fflush(NULL);
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
    return rc;
}

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
