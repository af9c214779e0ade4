/* SPDX-License-Identifier: MIT */
/* The stack-depth flow analysis (flow.h): one depth per reachable instruction, and the
 * unwinding check on the exception table.  Called by the verifier (verify.c) on every code
 * object before it may run, and by the assembler (asm.c) on every code object it completes.
 *
 * Notes
 * -----
 * Execution starts at offset 0 with the entry depth and at every handler target with the
 * entry's depth + 1.  From depth d an instruction's fall-through successor (unless OPF_END)
 * gets d - op_pops + op_pushes and its jump target (OPF_JUMP) d - op_pops + op_jump_pushes,
 * the effects opcodes.def states, so the table and the analysis cannot disagree.  Every
 * instruction must be reached with one depth, pop no more than it has and (with a limit)
 * leave no more than maxstack.
 *
 * An entry of unknown depth (the assembler's .try regions) takes the depth before its start
 * once the start is reached, and only then is its handler entered; entries whose start
 * nothing reaches get depth 0, in table order, until every handler has been entered.  So the
 * depths are a function of the bytecode alone, and a disassembly re-assembles to the same
 * table.
 *
 * Unwinding sets sp = stack + entry.depth, so no reachable instruction in [start, end) may
 * raise with fewer values than that on the stack (the handler would see slots the frame
 * never wrote, or values already freed): see unwind_floor.  Unreachable instructions never
 * raise and are not constrained.  A segment tree of floors answers "least floor in
 * [start, end)" in O(log n) per entry. */
#include <stdlib.h>

#include "vm/core/mem.h"
#include "vm/toolchain/flow.h"

#define NONE UINT32_MAX

typedef struct {
    flow_code *f;
    int64_t *depth;             /* before each instruction, -1 unreached */
    uint32_t *work;             /* instructions reached, successors not yet visited */
    uint32_t nwork;
    uint32_t *seed;             /* entries whose depth became known: enter their handlers */
    uint32_t nseed;
    uint32_t *by_start;         /* first unknown-depth entry starting at each offset, NONE */
    uint32_t *next_start;       /* next unknown-depth entry with the same start */
} walk;

/* The fewest values an exception raised by `in`, run at `depth`, leaves on the stack: the
 * depth before it, except that CALL pops callee and arguments before the callee runs and a
 * collection in the callee may free them.  Every other instruction raises with its operands
 * still on the stack (RAISE and RERAISE pop the exception, which stays alive as the one being
 * raised); one whose error path pops first belongs here beside CALL. */
static int64_t unwind_floor(instr in, int64_t depth)
{
    unsigned op = INSTR_OP(in);
    return op == OP_CALL ? depth - op_pops(op, INSTR_ARG(in)) : depth;
}

/* Records a failure of instruction pc itself (underflow, overflow). */
static int failed(walk *w, flow_kind kind, uint32_t pc, int64_t other, int64_t limit)
{
    w->f->fail = (flow_failure){kind, pc, -1, NONE, w->depth[pc], other, limit};
    return -1;
}

/* Arrival at pc with `depth`, from instruction `from` or (from == -1) as entry's handler. */
static int reach(walk *w, uint32_t pc, int64_t depth, int64_t from, uint32_t entry)
{
    flow_code *f = w->f;
    if (w->depth[pc] >= 0) {
        if (w->depth[pc] == depth)
            return 0;
        f->fail = (flow_failure){FLOW_MISMATCH, pc, from, entry, w->depth[pc], depth, 0};
        return -1;
    }
    w->depth[pc] = depth;
    w->work[w->nwork++] = pc;
    if (depth > f->maxdepth)
        f->maxdepth = depth;
    for (uint32_t k = w->by_start[pc]; k != NONE; k = w->next_start[k]) {
        f->exc[k].depth = depth;
        w->seed[w->nseed++] = k;
    }
    return 0;
}

static int enter_handler(walk *w, uint32_t k)
{
    return reach(w, w->f->exc[k].target, w->f->exc[k].depth + 1, -1, k);
}

/* Visits the successors of the instruction at pc. */
static int step(walk *w, uint32_t pc)
{
    flow_code *f = w->f;
    instr in = f->code[pc];
    unsigned op = INSTR_OP(in), fl = op_flags(op);
    uint32_t arg = INSTR_ARG(in);
    int64_t d = w->depth[pc], pops = op_pops(op, arg);
    if (pops > d)
        return failed(w, FLOW_UNDERFLOW, pc, pops, 0);
    if (!(fl & OPF_END)) {
        int64_t after = d - pops + op_pushes(op, arg);
        if (after > f->maxstack)
            return failed(w, FLOW_OVERFLOW, pc, after, f->maxstack);
        if (pc + 1 < f->ncode && reach(w, pc + 1, after, pc, NONE) < 0)
            return -1;
    }
    if (fl & OPF_JUMP) {
        int64_t after = d - pops + op_jump_pushes(op, arg);
        if (after > f->maxstack)
            return failed(w, FLOW_OVERFLOW, pc, after, f->maxstack);
        if (arg < f->ncode && reach(w, arg, after, pc, NONE) < 0)
            return -1;
    }
    return 0;
}

/* Runs the worklist until every handler has been entered (see the Notes). */
static int run(walk *w)
{
    flow_code *f = w->f;
    if (reach(w, 0, f->entry_depth, -1, NONE) < 0)
        return -1;
    for (uint32_t k = 0; k < f->nexc; k++)
        if (f->exc[k].depth != FLOW_UNKNOWN && enter_handler(w, k) < 0)
            return -1;
    uint32_t forced = 0;
    for (;;) {
        while (w->nwork || w->nseed) {
            int rc = w->nseed ? enter_handler(w, w->seed[--w->nseed])
                              : step(w, w->work[--w->nwork]);
            if (rc < 0)
                return -1;
        }
        while (forced < f->nexc && f->exc[forced].depth != FLOW_UNKNOWN)
            forced++;
        if (forced == f->nexc)
            return 0;
        f->exc[forced].depth = 0;
        w->seed[w->nseed++] = forced;
    }
}

static int64_t floor_at(const walk *w, uint32_t pc)
{
    return w->depth[pc] < 0 ? INT64_MAX : unwind_floor(w->f->code[pc], w->depth[pc]);
}

/* Checks every entry's depth against the least floor in its range, with a bottom-up
 * segment tree (tree[n + pc] is pc's floor); reports the first entry in table order and the
 * first offending instruction in its range. */
static int check_unwinding(walk *w)
{
    flow_code *f = w->f;
    uint32_t n = f->ncode;
    int64_t *tree = vm_malloc(2 * (size_t)n * sizeof *tree);
    if (!tree) {
        f->fail = (flow_failure){.kind = FLOW_NOMEM};
        return -1;
    }
    for (uint32_t pc = 0; pc < n; pc++)
        tree[n + pc] = floor_at(w, pc);
    for (uint32_t i = n - 1; i >= 1; i--)
        tree[i] = tree[2 * i] < tree[2 * i + 1] ? tree[2 * i] : tree[2 * i + 1];
    int rc = 0;
    for (uint32_t k = 0; k < f->nexc && !rc; k++) {
        const flow_entry *e = &f->exc[k];
        int64_t least = INT64_MAX;
        for (uint32_t l = e->start + n, r = e->end + n; l < r; l >>= 1, r >>= 1) {
            if (l & 1) {
                if (tree[l] < least)
                    least = tree[l];
                l++;
            }
            if (r & 1) {
                r--;
                if (tree[r] < least)
                    least = tree[r];
            }
        }
        if (least >= e->depth)
            continue;
        for (uint32_t pc = e->start; pc < e->end; pc++)
            if (floor_at(w, pc) < e->depth) {
                f->fail = (flow_failure){FLOW_UNWIND, pc, -1, k, w->depth[pc], floor_at(w, pc),
                                         e->depth};
                rc = -1;
                break;
            }
    }
    vm_free(tree);
    return rc;
}

int flow_analyze(flow_code *f)
{
    walk w = {.f = f};
    size_t n = f->ncode ? f->ncode : 1, ne = f->nexc ? f->nexc : 1;
    f->maxdepth = f->entry_depth;
    f->fail = (flow_failure){.kind = FLOW_OK};
    w.depth = vm_malloc(n * sizeof *w.depth);
    w.work = vm_malloc(n * sizeof *w.work);
    w.by_start = vm_malloc(n * sizeof *w.by_start);
    w.seed = vm_malloc(ne * sizeof *w.seed);
    w.next_start = vm_malloc(ne * sizeof *w.next_start);
    int rc = -1;
    if (!w.depth || !w.work || !w.by_start || !w.seed || !w.next_start) {
        f->fail.kind = FLOW_NOMEM;
        goto out;
    }
    for (uint32_t pc = 0; pc < f->ncode; pc++) {
        w.depth[pc] = -1;
        w.by_start[pc] = NONE;
    }
    for (uint32_t k = f->nexc; k-- > 0;)          /* buckets keep table order */
        if (f->exc[k].depth == FLOW_UNKNOWN) {
            w.next_start[k] = w.by_start[f->exc[k].start];
            w.by_start[f->exc[k].start] = k;
        }
    rc = 0;
    if (f->ncode && (run(&w) < 0 || (f->nexc && check_unwinding(&w) < 0)))
        rc = -1;
out:
    vm_free(w.depth);
    vm_free(w.work);
    vm_free(w.by_start);
    vm_free(w.seed);
    vm_free(w.next_start);
    return rc;
}
