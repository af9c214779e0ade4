/* SPDX-License-Identifier: MIT */
/* The interactive REPL (`gilvm`, `gilvm repl`, `gilvm -i FILE`) on GNU readline: line editing,
 * history, completion, a value stack kept across lines, multi-line blocks, meta-commands.
 * Called by the CLI (main.c) on the main thread, attached (holding the GIL).
 *
 * Notes
 *
 * Each input (one line, or a block) is assembled as a module of its own whose body starts with
 * the session's stack (asm_assemble's entry_depth), linked, and run by vm_run_code, which hands
 * back the stack left at HALT.  Between inputs the stack lives in a malloc'd array that a GC root
 * hook (vm_gc_add_root_hook) marks.  vm_run_code writes that array only on success, so while an
 * input runs the array still holds the values it started with: a failed input leaves the
 * stack as it was, and no value the input popped is collected under it.
 *
 * Blocks: `.func` opens a block that `.end` closes.  A top-level label, jump or `.try` opens a
 * block that an empty line closes (as a compound statement in python's REPL), because only
 * the user knows where a loop or a handler ends.  A block is assembled as one unit, so its
 * labels and jumps work; labels do not carry over to later inputs.
 *
 * Waiting for input, the REPL is detached (the GIL released), so other threads run while the
 * user types; completion re-attaches to read the globals.  Signals: while the prompt waits,
 * SIGINT and SIGWINCH are ours; their handler writes the signal number to a pipe that the
 * poll() loop around readline's callback interface watches (python's readline module does
 * the same with select()), so Ctrl-C discards the line, whichever thread the kernel picked.
 * While code runs, whatever SIGINT disposition was in place before the prompt (the runtime's
 * handler) is back, so Ctrl-C raises KeyboardInterrupt in the running code at its next poll.
 *
 * The terminal stays in readline's mode from one prompt to the next and is put back in its
 * normal mode only while code runs and at exit, so no key typed between two prompts meets
 * the cooked line discipline (see "the terminal's mode" below).
 *
 * A stdin that is not a terminal is read whole and run as a file named "<stdin>", as
 * `python < file` and `lua < file` do: no prompts, no history, no stack display, and the exit
 * status a file run gives. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include "vm/api/run.h"
#include "vm/api/gilvm.h"
#include "vm/cli/repl.h"
#include "vm/cli/rl.h"

#define PROMPT "gilvm> "
#define PROMPT_MORE "...... "
#define HISTORY_MAX 1000
#define HISTORY_FILE ".gilvm_history"

typedef struct {
    vm_thread *t;               /* the state the session runs on (in :interp N's interpreter) */
    vm_thread *home;            /* the state it started with */
    gilvm_thread *away;         /* after :interp N (N not home's): home, saved; else NULL */
    value *stack;               /* the session's value stack, bottom first (GC root) */
    uint32_t depth, cap;
    vm_code *last;              /* body of the last input, for :dis without a name (GC root) */
    value *snap;                /* global values at session start, for :reset (GC root) */
    uint32_t nsnap;
    unsigned ninput;            /* inputs assembled; input N is named "<input-N>" */
    int quit, status;           /* leave the REPL with this exit status */
    char *histfile;             /* NULL: history is not saved */
    unsigned nsaved;            /* lines appended to histfile since the last truncation */
    /* the block being read */
    char *buf;
    size_t len, bufcap;
    int in_func;                /* inside .func, until .end */
    int open;                   /* a top-level label, jump or .try: ends at an empty line */
} repl;

static repl *the_repl;          /* for the GC hook and the completion functions */

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        RT_FATAL("out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

static int is_id0(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
static int is_id(int c) { return is_id0(c) || (c >= '0' && c <= '9'); }
static int is_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static const char *skip_space(const char *s)
{
    while (is_space((unsigned char)*s))
        s++;
    return s;
}

/* ---- GC roots: the stack, the snapshot of globals, the last body ---- */

static void mark_roots(vm_interp *in, vm_gc_mark_fn mark, void *g)
{
    repl *r = the_repl;
    if (!r || in != VM_INTERP(r->t))
        return;
    for (uint32_t i = 0; i < r->depth; i++)
        mark(g, r->stack[i]);
    for (uint32_t i = 0; i < r->nsnap; i++)
        mark(g, r->snap[i]);
    if (r->last)
        mark(g, V_OBJ(T_CODE, r->last));
}

/* ---- the terminal's mode ----
 *
 * Readline's callback interface puts the terminal back in its normal (cooked) mode as soon as
 * a line is entered, and sets its own mode again when the next prompt is installed.  A key
 * arriving in between would meet the cooked line discipline, which turns Ctrl-D into an
 * end-of-file mark that reads as a NUL byte once readline's mode is back: the Ctrl-D was lost
 * and the REPL waited on (tests/repl: complete_opcode, ctrl_d_right_after_empty_line).  So
 * readline's prep and deprep hooks only ever enter its mode, and the REPL leaves it itself,
 * only while code runs (as in python's REPL, the program has the terminal as the user set it
 * up) and at the end of the session. */

static int tty_raw;             /* the terminal is in readline's mode */

/* rl_prep_term_function: readline's mode, with VMIN 0 (see getc_or_interrupt). */
static void tty_prep(int meta)
{
    if (tty_raw)
        return;
    RL(rl_prep_terminal)(meta);
    tty_raw = 1;
    int fd = fileno(RL(rl_instream) ? RL(rl_instream) : stdin);
    struct termios tio;
    if (!tcgetattr(fd, &tio)) {
        tio.c_cc[VMIN] = 0;
        tio.c_cc[VTIME] = 0;
        tcsetattr(fd, TCSANOW, &tio);
    }
}

/* rl_deprep_term_function: readline leaves the terminal alone; tty_cooked restores it. */
static void tty_keep(void)
{
}

/* Puts the terminal back as it was before readline's mode: before code runs, and at exit. */
static void tty_cooked(void)
{
    if (!tty_raw)
        return;
    RL(rl_deprep_terminal)();
    tty_raw = 0;
}

/* ---- running inputs ---- */

/* Reports t's pending exception: a SystemExit ends the session with its status, anything
 * else prints its traceback and the session goes on. */
static void report_exception(repl *r)
{
    vm_thread *t = r->t;
    value e = t->exc;
    int is_exit = e.tag == T_EXC &&
                  vm_class_is(AS_EXC(e)->cls, VM_INTERP(t)->exc.system_exit);
    int status = vm_exit_status(t);
    if (is_exit) {
        r->quit = 1;
        r->status = status;
    }
    fflush(stderr);
}

/* The stack display shows at most about REPR_MAX bytes of each value's repr, as reprlib
 * does: the head, "...", the tail (test_repl.py's long_value_abbreviated).  A repr longer
 * than REPR_SCAN is not made whole (a list of 50 M ints would take seconds and hundreds of
 * MB each line): its head and "..." show. */
enum { REPR_MAX = 200, REPR_SCAN = 64 * 1024 };

static int utf8_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

/* Writes `data` (a repr, UTF-8) whole, or its first and last bytes around "..." when it is
 * longer than REPR_MAX (only the first, then "...", if `cut`: it is a prefix); the cuts
 * fall between characters. */
static void print_abbreviated(const char *data, size_t len, bool cut)
{
    if (len <= REPR_MAX && !cut) {
        fwrite(data, 1, len, stdout);
        return;
    }
    size_t head = cut ? REPR_MAX - 3 : (REPR_MAX - 3) / 2;
    size_t tail = cut ? len : len - (REPR_MAX - 3 - head);
    while (head && utf8_cont((unsigned char)data[head]))
        head--;
    while (tail < len && utf8_cont((unsigned char)data[tail]))
        tail++;
    fwrite(data, 1, head, stdout);
    fputs("...", stdout);
    fwrite(data + tail, 1, len - tail, stdout);
}

static void print_stack(repl *r)
{
    fputc('[', stdout);
    for (uint32_t i = 0; i < r->depth; i++) {
        bool cut;
        value s = vm_repr_prefix(r->t, r->stack[i], REPR_SCAN, &cut);
        if (i)
            fputs(", ", stdout);
        print_abbreviated(AS_STR(s)->data, AS_STR(s)->len, cut);
    }
    fputs("]\n", stdout);
    fflush(stdout);
}

/* Prints an assembler message "<input-N>:LINE:COL: ..." after the source line and a caret
 * under the column, as python shows a SyntaxError. */
static void print_asm_error(const char *name, const char *src, size_t len, const char *err)
{
    char where[2048];
    asm_error_context(name, src, len, err, where, sizeof where);
    if (where[0])
        fprintf(stderr, "%s\n", where);
    fprintf(stderr, "%s\n", err);
    fflush(stderr);
}

static void ensure_cap(repl *r, uint32_t n)
{
    if (n <= r->cap)
        return;
    uint32_t cap = r->cap ? r->cap : 256;
    while (cap < n)
        cap *= 2;
    r->stack = xrealloc(r->stack, cap * sizeof *r->stack);
    r->cap = cap;
}

/* Assembles `src` as one input on top of the session's stack and runs it. */
static void run_input(repl *r, const char *src, size_t len)
{
    vm_thread *t = r->t;
    char name[32], err[1024];
    snprintf(name, sizeof name, "<input-%u>", ++r->ninput);
    vm_module m;
    fflush(stdout);
    if (asm_assemble(t, name, src, len, r->depth, &m, err, sizeof err)) {
        print_asm_error(name, src, len, err);
        return;
    }
    if (vm_module_verify(&m, name, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    if (vm_module_link(t, &m)) {
        vm_module_free(&m);
        report_exception(r);
        return;
    }
    vm_code *body = m.codes[0];
    vm_module_free(&m);
    r->last = body;
    ensure_cap(r, body->maxstack > r->depth ? body->maxstack : r->depth);
    uint32_t before = r->depth, depth = r->depth;
    tty_cooked();
    if (vm_run_code(t, body, r->stack, &depth, r->cap)) {
        report_exception(r);
        return;
    }
    r->depth = depth;
    fflush(stderr);
    if (r->depth || before)
        print_stack(r);
}

/* ---- blocks ---- */

/* Notes what line `s` opens or closes: .func/.end, and top-level labels, jumps and .try. */
static void scan_line(repl *r, const char *s)
{
    for (;;) {
        s = skip_space(s);
        if (!*s || *s == ';')
            return;
        if (*s == '.') {
            const char *d = ++s;
            while (is_id((unsigned char)*s))
                s++;
            size_t n = (size_t)(s - d);
            if (n == 4 && !memcmp(d, "func", 4))
                r->in_func = 1;
            else if (n == 3 && !memcmp(d, "end", 3))
                r->in_func = 0;
            else if (n == 3 && !memcmp(d, "try", 3) && !r->in_func)
                r->open = 1;
            return;
        }
        const char *w = s;
        while (is_id((unsigned char)*s))
            s++;
        size_t n = (size_t)(s - w);
        if (!n || !is_id0((unsigned char)*w))
            return;
        const char *q = s;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == ':') {                                /* a label */
            if (!r->in_func)
                r->open = 1;
            s = q + 1;
            continue;
        }
        int op = op_lookup(w, (unsigned)n);
        if (op >= 0 && (op_flags((unsigned)op) & OPF_JUMP) && !r->in_func)
            r->open = 1;
        return;
    }
}

static void block_clear(repl *r)
{
    r->len = 0;
    r->in_func = r->open = 0;
}

static void block_append(repl *r, const char *line)
{
    size_t n = strlen(line);
    if (r->len + n + 2 > r->bufcap) {
        r->bufcap = (r->len + n + 2) * 2;
        r->buf = xrealloc(r->buf, r->bufcap);
    }
    memcpy(r->buf + r->len, line, n);
    r->len += n;
    r->buf[r->len++] = '\n';
    r->buf[r->len] = 0;
}

static void block_run(repl *r)
{
    if (r->len)
        run_input(r, r->buf, r->len);
    block_clear(r);
}

/* ---- meta-commands ---- */

static void cmd_help(repl *r, const char *arg);
static void cmd_dis(repl *r, const char *arg);
static void cmd_stack(repl *r, const char *arg);
static void cmd_threads(repl *r, const char *arg);
static void cmd_interps(repl *r, const char *arg);
static void cmd_interp(repl *r, const char *arg);
static void cmd_stats(repl *r, const char *arg);
static void cmd_load(repl *r, const char *arg);
static void cmd_reset(repl *r, const char *arg);
static void cmd_quit(repl *r, const char *arg);

static const struct meta {
    const char *name, *args, *help;
    void (*fn)(repl *r, const char *arg);
} metas[] = {
    {":help", " [NAME]", "this text, or what instruction, builtin or global NAME is", cmd_help},
    {":dis", " [NAME]", "disassemble function NAME (default: the last input)", cmd_dis},
    {":stack", "", "the value stack, one value per line, top last", cmd_stack},
    {":threads", "", "thread states of this interpreter", cmd_threads},
    {":interps", "", "interpreters of the runtime", cmd_interps},
    {":interp", " N", "switch the session into interpreter N (:interps lists them)", cmd_interp},
    {":stats", "", "GIL and thread statistics of this interpreter", cmd_stats},
    {":load", " FILE", "run a .gasm or .gbc file here; its definitions stay", cmd_load},
    {":reset", "", "empty the stack; restore the globals of the session's start", cmd_reset},
    {":quit", " [N]", "leave the REPL with exit status N (default 0); so does Ctrl-D", cmd_quit},
};
#define NMETAS (sizeof metas / sizeof metas[0])

/* ":help NAME": an instruction's operand and stack picture (opcodes.def), a builtin's
 * signature (its natives row, which docs/library.md shows the same), or what a global is. */
static void help_name(repl *r, const char *name)
{
    char upper[32];                     /* mnemonics match in any case, as in assembly */
    size_t n = strlen(name);
    for (size_t i = 0; i < n && i < sizeof upper; i++)
        upper[i] = (char)toupper((unsigned char)name[i]);
    int op = n < sizeof upper ? op_lookup(upper, (unsigned)n) : -1;
    if (op >= 0) {
        op_kind k = op_kind_of((unsigned)op);
        printf("%s  (instruction; %s%s%s)\n    %s\n", op_name((unsigned)op),
               k == OPK_NONE ? "" : "operand: ", op_kind_operand(k),
               op_flags((unsigned)op) & OPF_POLL ? "; polls the eval breaker" : "",
               op_picture((unsigned)op));
        printf("See docs/assembly.md for what it does and raises.\n");
        return;
    }
    for (size_t i = 0; i < NMETAS; i++)
        if (!strcmp(metas[i].name, name)) {
            printf("%s%s  %s\n", metas[i].name, metas[i].args, metas[i].help);
            return;
        }
    value v = vm_global_get(VM_INTERP(r->t), name);
    if (v.tag == T_NATIVE) {
        const char *sig = AS_NATIVE(v)->sig;
        printf("%s\n", sig ? sig : name);
        printf("(built-in function; see docs/library.md)\n");
    } else if (v.tag == T_FUNC) {
        vm_code *c = AS_FUNC(v)->code;
        printf("%s(", name);
        for (uint32_t i = 0; i < c->nparams; i++)
            printf("%s%s", i ? ", " : "", c->localnames[i]->data);
        printf(")  (function, %s line %u)\n", c->file ? c->file->data : "?",
               c->lines && c->ncode ? c->lines[0] : 0);
    } else if (v.tag == T_CLASS) {
        vm_class *k = AS_CLASS(v);
        if (k->base && k->base != k)
            printf("class %s(%s)  (exception class; see docs/library.md)\n", k->name->data,
                   k->base->name->data);
        else
            printf("class %s  (exception class; see docs/library.md)\n", k->name->data);
    } else if (v.tag != T_UNDEF) {
        bool cut;
        value s = vm_repr_prefix(r->t, v, REPR_SCAN, &cut);
        printf("%s: a global %s, ", name, vm_type_name(v));
        print_abbreviated(AS_STR(s)->data, AS_STR(s)->len, cut);
        printf("\n");
    } else
        printf("no instruction, command, builtin or global named '%s'\n", name);
}

static void cmd_help(repl *r, const char *arg)
{
    if (*arg) {
        help_name(r, arg);
        return;
    }
    printf("Instructions run as you enter them, on a value stack kept between lines and shown\n"
           "after each one.  A .func ... .end block defines a function for later lines; a block\n"
           "with top-level labels, jumps or .try runs when you enter an empty line.\n\n");
    for (size_t i = 0; i < NMETAS; i++) {
        char head[32];
        snprintf(head, sizeof head, "%s%s", metas[i].name, metas[i].args);
        printf("  %-12s %s\n", head, metas[i].help);
    }
    printf("\nCommands may be abbreviated (:q).  Tab completes instructions, globals and commands;\n"
           "Ctrl-C clears the line or interrupts running code; Up recalls and Ctrl-R searches the\n"
           "history (~/" HISTORY_FILE "); Ctrl-D leaves.  See docs/repl.md.\n");
}

static void cmd_dis(repl *r, const char *arg)
{
    fflush(stdout);
    if (!*arg) {
        if (r->last)
            dis_code(stdout, r->last);
        else
            printf("nothing to disassemble yet (give a function name)\n");
        return;
    }
    value v = vm_global_get(VM_INTERP(r->t), arg);
    if (v.tag == T_FUNC)
        dis_code(stdout, AS_FUNC(v)->code);
    else if (v.tag == T_UNDEF)
        printf("no global named '%s'\n", arg);
    else if (v.tag == T_NATIVE)
        printf("'%s' is a native function\n", arg);
    else
        printf("'%s' is a %s, not a function\n", arg, vm_type_name(v));
}

static void cmd_stack(repl *r, const char *arg)
{
    if (!r->depth) {
        printf("(empty)\n");
        return;
    }
    for (uint32_t i = 0; i < r->depth; i++) {
        value s = vm_repr(r->t, r->stack[i]);
        printf("  %3u  %-9s %s%s\n", i, vm_type_name(r->stack[i]), AS_STR(s)->data,
               i + 1 == r->depth ? "   <- top" : "");
    }
}

static const char *state_name(int s)
{
    switch (s) {
    case RT_DETACHED: return "detached";
    case RT_ATTACHED: return "attached";
    case RT_SUSPENDED: return "suspended";
    case RT_SHUTTING_DOWN: return "shutting down";
    default: return "?";
    }
}

static const char *whence_name(int w)
{
    switch (w) {
    case RT_WHENCE_INIT: return "init";
    case RT_WHENCE_FINI: return "fini";
    case RT_WHENCE_THREADING: return "threading";
    case RT_WHENCE_GILSTATE: return "gilstate";
    case RT_WHENCE_EXEC: return "exec";
    default: return "unknown";
    }
}

typedef struct {
    uint64_t id;
    int state, daemon, whence, self;
} thread_row;

static void cmd_threads(repl *r, const char *arg)
{
    rt_interp *in = r->t->base.interp;
    thread_row *rows = NULL;
    size_t n = 0, cap = 0;
    /* Copied under HEAD_LOCK, printed after: nothing else is called with the lock held. */
    pthread_mutex_lock(&rt_main_runtime.mutex);
    for (rt_thread *th = in->threads; th; th = th->next) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = xrealloc(rows, cap * sizeof *rows);
        }
        rows[n++] = (thread_row){th->id, atomic_load(&th->state), th->daemon, th->whence,
                                 th == &r->t->base};
    }
    pthread_mutex_unlock(&rt_main_runtime.mutex);
    printf("  %4s  %-13s %-6s %s\n", "id", "state", "daemon", "started by");
    for (size_t i = n; i-- > 0;)                        /* oldest first */
        printf("%c %4llu  %-13s %-6s %s%s\n", rows[i].self ? '*' : ' ',
               (unsigned long long)rows[i].id, state_name(rows[i].state),
               rows[i].daemon ? "yes" : "no", whence_name(rows[i].whence),
               rows[i].self ? " (this REPL)" : "");
    free(rows);
}

typedef struct {
    int64_t id;
    size_t nthreads;
    int own_gil, finalizing, self, main;
    uint64_t interval_us;
} interp_row;

static void cmd_interps(repl *r, const char *arg)
{
    interp_row *rows = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&rt_main_runtime.mutex);
    for (rt_interp *in = rt_main_runtime.interps; in; in = in->next) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            rows = xrealloc(rows, cap * sizeof *rows);
        }
        size_t nt = 0;
        for (rt_thread *th = in->threads; th; th = th->next)
            nt++;
        rows[n++] = (interp_row){in->id, nt, in->gil == &in->own, atomic_load(&in->finalizing),
                                 in == r->t->base.interp, in == rt_main_runtime.main_interp,
                                 atomic_load(&in->gil->interval_us)};
    }
    pthread_mutex_unlock(&rt_main_runtime.mutex);
    printf("  %4s  %7s  %-6s %9s\n", "id", "threads", "GIL", "interval");
    for (size_t i = n; i-- > 0;)                        /* oldest first */
        printf("%c %4lld  %7zu  %-6s %7.3gms%s%s%s\n", rows[i].self ? '*' : ' ',
               (long long)rows[i].id, rows[i].nthreads, rows[i].own_gil ? "own" : "shared",
               (double)rows[i].interval_us / 1000.0, rows[i].main ? "  main" : "",
               rows[i].finalizing ? "  finalizing" : "", rows[i].self ? "  (this REPL)" : "");
    free(rows);
}

/* Takes the snapshot of the session's interpreter's globals that :reset restores. */
static void snapshot(repl *r)
{
    vm_globals *g = &VM_INTERP(r->t)->globals;
    r->nsnap = g->n;
    r->snap = xrealloc(r->snap, (g->n ? g->n : 1) * sizeof *r->snap);
    for (uint32_t i = 0; i < g->n; i++)
        r->snap[i] = *g->cells[i];
}

/* Goes back to the session's first interpreter if it is away from it. */
static void go_home(repl *r)
{
    if (r->away) {
        gilvm_interp_leave(r->away);
        r->away = NULL;
        r->t = r->home;
    }
}

static void cmd_interp(repl *r, const char *arg)
{
    char *end;
    long long id = strtoll(arg, &end, 10);
    if (!*arg || *skip_space(end)) {
        printf("usage: :interp N  (N: an interpreter id; :interps lists them)\n");
        return;
    }
    if (id == r->t->base.interp->id) {
        printf("already in interpreter %lld\n", id);
        return;
    }
    /* Values of one interpreter's heap mean nothing in another's. */
    r->depth = 0;
    r->last = NULL;
    go_home(r);
    if (id != r->home->base.interp->id) {
        gilvm_thread *home = gilvm_interp_enter(id);
        if (!home) {
            printf("%s: %s (back in interpreter %lld)\n", gilvm_error_type(), gilvm_error_message(),
                   (long long)r->t->base.interp->id);
            snapshot(r);
            return;
        }
        r->away = home;
        r->t = (vm_thread *)rt_thread_current();
    }
    snapshot(r);
    printf("now in interpreter %lld (stack emptied)\n", id);
}

typedef struct {
    uint64_t id;
    int live;
    rt_thread_stats s;          /* counters only: the sample arrays are not copied */
} stats_row;

typedef struct {
    stats_row *rows;
    size_t n, cap;
} stats_acc;

static void stats_collect(void *arg, uint64_t id, int live, const rt_thread_stats *s)
{
    stats_acc *a = arg;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->rows = xrealloc(a->rows, a->cap * sizeof *a->rows);
    }
    stats_row *row = &a->rows[a->n++];
    row->id = id;
    row->live = live;
    row->s = *s;
    row->s.hold_samples = row->s.wait_samples = NULL;
}

static void cmd_stats(repl *r, const char *arg)
{
    stats_acc a = {0};
    rt_interp *in = r->t->base.interp;
    rt_interp_stats_foreach(in, stats_collect, &a);
    printf("interpreter %lld, switch interval %gms (times in ms)\n", (long long)in->id,
           (double)rt_interp_switch_interval(in) / 1000.0);
    printf("  %6s %-4s %9s %7s %8s %12s %9s %8s %9s %8s %6s %7s %4s\n", "thread", "live",
           "switches", "forced", "drop-req", "bytecodes", "hold", "max", "wait", "max",
           "calls", "signals", "gc");
    for (size_t i = 0; i < a.n; i++) {
        const rt_thread_stats *s = &a.rows[i].s;
        printf("  %6llu %-4s %9llu %7llu %8llu %12llu %9.3f %8.3f %9.3f %8.3f %6llu %7llu %4llu\n",
               (unsigned long long)a.rows[i].id, a.rows[i].live ? "yes" : "no",
               (unsigned long long)s->switches, (unsigned long long)s->forced_switches,
               (unsigned long long)s->drop_requests, (unsigned long long)s->bytecodes,
               s->hold_ns / 1e6, s->hold_max_ns / 1e6, s->wait_ns / 1e6, s->wait_max_ns / 1e6,
               (unsigned long long)s->pending_calls, (unsigned long long)s->signals,
               (unsigned long long)s->gc_runs);
    }
    free(a.rows);
}

static void cmd_load(repl *r, const char *arg)
{
    if (!*arg) {
        printf("usage: :load FILE\n");
        return;
    }
    char *path = RL(tilde_expand)(arg);
    vm_module m;
    char err[1024];
    fflush(stdout);
    if (vm_load_file(r->t, path, &m, err, sizeof err))
        fprintf(stderr, "%s\n", err);
    else if (vm_module_link(r->t, &m)) {
        vm_module_free(&m);
        report_exception(r);
    } else {
        vm_code *body = m.codes[0];
        vm_module_free(&m);
        r->last = body;
        tty_cooked();
        if (vm_run_code(r->t, body, NULL, NULL, 0))
            report_exception(r);
    }
    free(path);
}

static void cmd_reset(repl *r, const char *arg)
{
    vm_globals *g = &VM_INTERP(r->t)->globals;
    for (uint32_t i = 0; i < g->n; i++)
        *g->cells[i] = i < r->nsnap ? r->snap[i] : V_UNDEF;
    r->depth = 0;
    r->last = NULL;
    printf("stack emptied; globals as at the session's start\n");
}

static void cmd_quit(repl *r, const char *arg)
{
    if (*arg) {
        char *end;
        long n = strtol(arg, &end, 10);
        if (*skip_space(end) || end == arg) {
            printf("usage: :quit [N]  (N: an exit status)\n");
            return;
        }
        r->status = (int)(n & 0xff);
    }
    r->quit = 1;
}

/* Runs ":NAME ARGS"; a unique prefix of a name will do. */
static void run_meta(repl *r, const char *line)
{
    const char *s = skip_space(line), *e = s + 1;
    while (*e && !is_space((unsigned char)*e))
        e++;
    size_t n = (size_t)(e - s);
    const struct meta *hit = NULL;
    int nhits = 0;
    for (size_t i = 0; i < NMETAS; i++) {
        if (strlen(metas[i].name) == n && !memcmp(metas[i].name, s, n)) {
            hit = &metas[i];
            nhits = 1;
            break;
        }
        if (n > 1 && !strncmp(metas[i].name, s, n)) {
            hit = &metas[i];
            nhits++;
        }
    }
    if (nhits != 1) {
        printf("%s command '%.*s' (type :help)\n", nhits ? "ambiguous" : "unknown", (int)n, s);
        return;
    }
    char *arg = xstrdup(skip_space(e));
    size_t al = strlen(arg);
    while (al && is_space((unsigned char)arg[al - 1]))
        arg[--al] = 0;
    hit->fn(r, arg);
    free(arg);
    fflush(stdout);
}

/* ---- input lines ---- */

/* A hint for a python user's `exit`, `quit` or `help` (with or without "()") typed at the
 * prompt, as python's REPL gives for a bare `exit`; NULL for any other line. */
static const char *python_word_hint(const char *s)
{
    static const struct { const char *word, *hint; } words[] = {
        {"exit", "Use :quit or Ctrl-D (i.e. EOF) to exit"},
        {"quit", "Use :quit or Ctrl-D (i.e. EOF) to exit"},
        {"help", "Type :help for help"},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i].word);
        if (strncmp(s, words[i].word, n))
            continue;
        const char *e = s + n;
        if (e[0] == '(' && e[1] == ')')
            e += 2;
        if (!*skip_space(e))
            return words[i].hint;
    }
    return NULL;
}

/* Handles one line typed at the prompt (or one line of a pasted text). */
static void handle_line(repl *r, const char *line)
{
    const char *s = skip_space(line);
    if (!r->len) {
        if (!*s)
            return;
        if (*s == ':') {
            run_meta(r, s);
            return;
        }
        const char *hint = python_word_hint(s);
        if (hint) {
            printf("%s\n", hint);
            fflush(stdout);
            return;
        }
    }
    if (!*s) {
        if (r->in_func)                 /* empty lines inside a function are kept */
            block_append(r, line);
        else
            block_run(r);
        return;
    }
    block_append(r, line);
    scan_line(r, line);
    if (!r->in_func && !r->open)
        block_run(r);
}

/* ---- history ---- */

static void history_start(repl *r)
{
    RL(using_history)();
    RL(stifle_history)(HISTORY_MAX);
    const char *home = getenv("HOME");
    if (!home || !*home)
        return;
    size_t n = strlen(home) + sizeof HISTORY_FILE + 1;
    r->histfile = xrealloc(NULL, n);
    snprintf(r->histfile, n, "%s/%s", home, HISTORY_FILE);
    RL(read_history)(r->histfile);      /* a missing or unreadable file is an empty history */
}

/* Adds a line to the history and appends it to the file; a file that cannot be written is
 * silently given up for the rest of the session. */
static void history_add(repl *r, const char *line)
{
    if (!*skip_space(line))
        return;
    HIST_ENTRY *last = RL(history_length)
                           ? RL(history_get)(RL(history_base) + RL(history_length) - 1) : NULL;
    if (last && !strcmp(last->line, line))
        return;
    RL(add_history)(line);
    if (!r->histfile)
        return;
    int rc = RL(append_history)(1, r->histfile);
    if (rc == ENOENT)
        rc = RL(write_history)(r->histfile);
    if (rc) {
        free(r->histfile);
        r->histfile = NULL;
    } else if (++r->nsaved >= 100) {
        r->nsaved = 0;
        RL(history_truncate_file)(r->histfile, HISTORY_MAX);
    }
}

static void history_finish(repl *r)
{
    if (r->histfile)
        RL(history_truncate_file)(r->histfile, HISTORY_MAX);
    free(r->histfile);
    r->histfile = NULL;
    RL(clear_history)();
}

/* ---- completion ---- */

static const char *const directives[] = {".func", ".end", ".local", ".try", ".end_try",
                                         ".line", ".source"};

static char **cands;            /* candidates of the completion under way */
static size_t ncands, capcands, nextcand;

static void cand_add(const char *s)
{
    if (ncands == capcands) {
        capcands = capcands ? capcands * 2 : 64;
        cands = xrealloc(cands, capcands * sizeof *cands);
    }
    cands[ncands++] = xstrdup(s);
}

static void cands_clear(void)
{
    for (size_t i = nextcand; i < ncands; i++)
        free(cands[i]);
    ncands = nextcand = 0;
}

static char *cand_next(const char *text, int state)
{
    return nextcand < ncands ? cands[nextcand++] : NULL;     /* readline frees it */
}

/* Global names starting with `text` (functions only if `funcs`); attaches to read them. */
static void cand_globals(const char *text, int funcs)
{
    vm_thread *t = the_repl->t;
    size_t n = strlen(text);
    rt_thread_attach(&t->base);
    vm_globals *g = &VM_INTERP(t)->globals;
    for (uint32_t i = 0; i < g->n; i++) {
        value v = *g->cells[i];
        if (v.tag == T_UNDEF || (funcs && v.tag != T_FUNC))
            continue;
        if (!strncmp(g->names[i]->data, text, n))
            cand_add(g->names[i]->data);
    }
    rt_thread_detach(&t->base);
}

/* Which word is being completed, from the start of the line: the first word (a mnemonic,
 * directive or meta-command) or an operand of the first word. */
static char **complete(const char *text, int start, int end)
{
    RL(rl_attempted_completion_over) = 1;       /* never fall back to file names */
    cands_clear();
    const char *line = RL(rl_line_buffer), *p = skip_space(line);
    for (;;) {                                  /* skip label definitions */
        const char *q = p;
        while (is_id((unsigned char)*q))
            q++;
        const char *c = q;
        while (*c == ' ' || *c == '\t')
            c++;
        if (q > p && *c == ':' && c - line < start)
            p = skip_space(c + 1);
        else
            break;
    }
    size_t tl = strlen(text);
    if (p - line >= start) {                    /* the first word */
        if (text[0] == ':') {
            if (!the_repl->len)
                for (size_t i = 0; i < NMETAS; i++)
                    if (!strncmp(metas[i].name, text, tl))
                        cand_add(metas[i].name);
        } else if (text[0] == '.') {
            for (size_t i = 0; i < sizeof directives / sizeof *directives; i++)
                if (!strncmp(directives[i], text, tl))
                    cand_add(directives[i]);
        } else {
            for (unsigned op = 0; op < OP__COUNT; op++)
                if (!strncasecmp(op_name(op), text, tl))
                    cand_add(op_name(op));
        }
    } else {                                    /* an operand of the first word */
        const char *w = p;
        while (*w && !is_space((unsigned char)*w))
            w++;
        size_t wn = (size_t)(w - p);
        if (*p == ':') {
            if (wn > 1 && !strncmp(":load", p, wn)) {
                RL(rl_filename_completion_desired) = 1;
                return RL(rl_completion_matches)(text, RL(rl_filename_completion_function));
            }
            if (wn > 1 && !strncmp(":dis", p, wn))
                cand_globals(text, 1);
        } else {
            int op = op_lookup(p, (unsigned)wn);
            if (op >= 0 && op_kind_of((unsigned)op) == OPK_NAME)
                cand_globals(text, 0);
        }
    }
    if (!ncands)
        return NULL;
    return RL(rl_completion_matches)(text, cand_next);
}

/* ---- reading a line: readline's callback interface in a poll() loop ---- */

enum { READ_LINE, READ_EOF, READ_INTERRUPT };

static int sig_pipe[2] = {-1, -1};
static char *line_read;
static int line_done;
static int interrupted;         /* Ctrl-C seen while reading this line */

static void on_signal(int sig)
{
    int e = errno;
    unsigned char c = (unsigned char)sig;
    ssize_t n = write(sig_pipe[1], &c, 1);       /* a full pipe already wakes the loop */
    (void)n;
    errno = e;
}

static void on_line(char *line)
{
    line_read = line;
    line_done = 1;
    RL(rl_callback_handler_remove)();
}

/* Takes the signals the handler wrote to the pipe: SIGWINCH resizes, SIGINT interrupts. */
static void take_signals(void)
{
    unsigned char sigs[64];
    ssize_t k;
    while ((k = read(sig_pipe[0], sigs, sizeof sigs)) > 0)
        for (ssize_t i = 0; i < k; i++) {
#ifdef SIGWINCH
            if (sigs[i] == SIGWINCH)
                RL(rl_resize_terminal)();
#endif
            if (sigs[i] == SIGINT)
                interrupted = 1;
        }
}

/* Waits until `fd` or the signal pipe has something, then takes the signals.  Returns -1 on
 * error, else whether `fd` can be read (keys, or a hangup: *hup).  The pipe is read after
 * EINTR too: TSan runs a handler that interrupted poll() only at its next intercepted call
 * (tests/repl: ctrl_c_at_prompt_clears_line). */
static int wait_input(int fd, int *hup)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = sig_pipe[0], .events = POLLIN}};
    int n = poll(p, 2, -1);
    if (n < 0 && errno != EINTR)
        return -1;
    take_signals();
    *hup = n > 0 && (p[0].revents & (POLLHUP | POLLERR | POLLNVAL));
    return n > 0 && ((p[0].revents & POLLIN) || *hup);
}

/* readline's rl_getc_function: one key, or EOF for Ctrl-C (which ends whatever readline was
 * doing) and for the end of input.  Readline calls it without asking poll() first when it
 * gathers typed-ahead keys, so it waits on the signal pipe as well as the terminal.  And keys
 * poll() has seen can be gone by the time read() runs: Ctrl-C makes the tty discard its
 * input, and the SIGINT handler may already have run, so no EINTR would end a blocking read.
 * So the terminal has VMIN 0 (tty_prep) and a read that finds nothing returns 0 and goes back
 * to poll(), which sees the signal (tests/repl: ctrl_c_at_prompt_clears_line). */
static int getc_or_interrupt(FILE *stream)
{
    int fd = fileno(stream);
    for (;;) {
        int hup = 0, ready;
        if (interrupted || (ready = wait_input(fd, &hup)) < 0 || interrupted)
            return EOF;
        if (!ready)
            continue;
        unsigned char c;
        ssize_t k = read(fd, &c, 1);
        if (k == 1)
            return c;
        if (k < 0 && errno != EINTR && errno != EAGAIN)
            return EOF;
        if (k == 0 && hup)                      /* end of input */
            return EOF;
        /* 0 without a hangup: the keys poll() saw were discarded; wait again */
    }
}

static int pipe_open(void)
{
    if (pipe(sig_pipe))
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
        fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
}

static void pipe_close(void)
{
    for (int i = 0; i < 2; i++) {
        if (sig_pipe[i] >= 0)
            close(sig_pipe[i]);
        sig_pipe[i] = -1;
    }
}

/* Shows `prompt` and reads one line with the GIL released.  READ_LINE with *out (malloc'd),
 * READ_EOF (Ctrl-D on an empty line, or end of input) or READ_INTERRUPT (Ctrl-C). */
static int read_line(repl *r, const char *prompt, char **out)
{
    unsigned char stale[64];            /* a byte left by a signal that came too late */
    while (read(sig_pipe[0], stale, sizeof stale) > 0)
        ;
    struct sigaction sa, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
#ifdef SIGWINCH
    struct sigaction old_winch;
    sigaction(SIGWINCH, &sa, &old_winch);
#endif
    fflush(stdout);
    fflush(stderr);
    rt_thread_detach(&r->t->base);

    FILE *outs = RL(rl_outstream) ? RL(rl_outstream) : stdout;
    int status = READ_LINE, failed = 0;
    line_read = NULL;
    line_done = interrupted = 0;
    RL(rl_callback_handler_install)(prompt, on_line);
    int in = fileno(RL(rl_instream) ? RL(rl_instream) : stdin);
    while (!line_done && !interrupted) {
        int hup, ready = wait_input(in, &hup);
        if (ready < 0) {
            failed = 1;
            break;
        }
        if (ready && !interrupted)
            RL(rl_callback_read_char)();
    }
    if (interrupted) {
        /* Show the line whole with ^C after it, then drop it (python's readline module
         * cleans up the same way). */
        if (!line_done) {
            RL(rl_point) = RL(rl_end);
            RL(rl_redisplay)();
            RL(rl_free_line_state)();
            RL(rl_callback_sigcleanup)();
            RL(rl_cleanup_after_signal)();
            RL(rl_callback_handler_remove)();
        }
        fputs("^C\n", outs);
        status = READ_INTERRUPT;
    } else if (failed || !line_read) {
        if (!line_done)
            RL(rl_callback_handler_remove)();
        fputc('\n', outs);
        status = READ_EOF;
    }
    fflush(outs);

    rt_thread_attach_urgent(&r->t->base);
    sigaction(SIGINT, &old_int, NULL);
#ifdef SIGWINCH
    sigaction(SIGWINCH, &old_winch, NULL);
#endif
    *out = status == READ_LINE ? line_read : NULL;
    if (status != READ_LINE)
        free(line_read);
    return status;
}

/* ---- the two modes ---- */

/* Non-tty stdin: the whole input is one program named "<stdin>", as a file would be. */
static int run_script(vm_thread *t)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = xrealloc(NULL, cap + 1);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (n < cap) {
            if (ferror(stdin)) {
                fprintf(stderr, "gilvm: <stdin>: %s\n", strerror(errno));
                free(buf);
                return GILVM_EXIT_USAGE;
            }
            break;
        }
        cap *= 2;
        buf = xrealloc(buf, cap + 1);
    }
    buf[n] = 0;
    vm_module m;
    char err[1024];
    int rc = vm_load_source(t, "<stdin>", buf, n, &m, err, sizeof err);
    free(buf);
    if (rc) {
        fprintf(stderr, "gilvm: %s\n", err);
        return GILVM_EXIT_DATAERR;
    }
    return vm_run_module(t, &m);
}

int vm_repl_main(vm_thread *t)
{
    if (!isatty(STDIN_FILENO))
        return run_script(t);

    repl r = {.t = t, .home = t};
    char why[256];
    if (cli_rl_load(why, sizeof why)) {
        fprintf(stderr, "gilvm: repl: %s\n", why);
        return GILVM_EXIT_EXCEPTION;
    }
    if (pipe_open()) {
        fprintf(stderr, "gilvm: repl: %s\n", strerror(errno));
        return GILVM_EXIT_EXCEPTION;
    }
    vm_globals *g = &VM_INTERP(t)->globals;
    r.nsnap = g->n;
    r.snap = xrealloc(NULL, (g->n ? g->n : 1) * sizeof *r.snap);
    for (uint32_t i = 0; i < g->n; i++)
        r.snap[i] = *g->cells[i];
    the_repl = &r;
    vm_gc_add_root_hook(mark_roots);

    RL(rl_readline_name) = "gilvm";
    RL(rl_catch_signals) = 0;                   /* SIGINT and SIGWINCH: see read_line */
    RL(rl_catch_sigwinch) = 0;
    RL(rl_change_environment) = 0;
    RL(rl_getc_function) = getc_or_interrupt;
    RL(rl_prep_term_function) = tty_prep;
    RL(rl_deprep_term_function) = tty_keep;
    RL(rl_attempted_completion_function) = complete;
    RL(rl_basic_word_break_characters) = " \t\n\"',()[]{}";
    history_start(&r);

    printf("gilvm %s  (:help for help, Ctrl-D to leave)\n", GILVM_VERSION);
    while (!r.quit) {
        char *line;
        int st = read_line(&r, r.len ? PROMPT_MORE : PROMPT, &line);
        if (st == READ_INTERRUPT) {
            block_clear(&r);
            continue;
        }
        if (st == READ_EOF) {
            if (!r.len)
                break;
            block_run(&r);                      /* report what the unfinished block lacks */
            continue;
        }
        history_add(&r, line);
        /* A paste may bring several lines at once (bracketed paste). */
        for (char *s = line, *nl; s && !r.quit; s = nl) {
            nl = strchr(s, '\n');
            if (nl)
                *nl++ = 0;
            handle_line(&r, s);
        }
        free(line);
    }

    go_home(&r);
    tty_cooked();
    history_finish(&r);
    vm_gc_remove_root_hook(mark_roots);
    the_repl = NULL;
    cands_clear();
    free(cands);
    cands = NULL;
    capcands = 0;
    pipe_close();
    free(r.stack);
    free(r.snap);
    free(r.buf);
    fflush(stdout);
    return r.status;
}
