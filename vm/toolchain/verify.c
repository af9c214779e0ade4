/* SPDX-License-Identifier: MIT */
/* The load-time bytecode verifier: proves that a code object cannot read or write out of
 * bounds when the eval loop runs it.  Called by vm_bc_read on every loaded code object and
 * by the loader (api.c) on the assembler's output.
 *
 * Notes
 * -----
 * The eval loop (eval.c) trusts verified code completely: it indexes locals, constants,
 * names and the value stack without checks, and jumps wherever an operand says.  So every
 * rule below closes one way that trust could be abused; docs/bytecode.md lists them with the
 * reason for each.  In short:
 *
 *   - structure: ncode >= 1, sane sizes, arrays present, nparams <= nlocals, module bodies
 *     have no params or locals, functions start with an empty stack;
 *   - per instruction (reachable or not): a valid opcode; NONE operands 0; CONST, LOCAL and
 *     NAME operands in range; jump targets inside the code, backward only for JUMP_BACKWARD
 *     and strictly forward for every other jump (so every loop passes JUMP_BACKWARD's poll);
 *     HALT only in a module body; a function starts with RESUME (every call polls);
 *     the last instruction never falls through;
 *   - exception table: start < end <= ncode, target < ncode, depth + 1 <= maxstack;
 *   - flow and unwinding, by the analysis the assembler runs too (flow.c): from offset 0
 *     and every handler target, one stack depth per reachable instruction, never negative,
 *     never above maxstack; and no entry unwinds to more values than a reachable instruction
 *     in its range leaves when it raises.
 *
 * It is all linear in the code size plus O(log n) per exception entry, so a hostile file
 * cannot make verification slow. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "vm/toolchain/flow.h"
#include "vm/toolchain/module.h"

/* Sizes above these are refused: they bound the frame (nlocals + maxstack values) and the
 * verifier's own tables. */
#define VERIFY_MAX_CODE  (1u << 24)
#define VERIFY_MAX_FRAME (1u << 20)

typedef struct {
    const vm_code *c;
    char *err;
    size_t errlen;
} verifier;

/* Copies up to 64 bytes of the function's name into buf, printable ASCII only: names come
 * from untrusted files and the message must stay one line. */
static const char *safe_name(const vm_code *c, char *buf, size_t size)
{
    if (!c->name)
        return "?";
    size_t n = 0;
    for (size_t i = 0; i < c->name->len && n + 4 < size; i++) {
        unsigned char ch = (unsigned char)c->name->data[i];
        buf[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        if (i == 63 && c->name->len > 64) {
            buf[n++] = '.'; buf[n++] = '.'; buf[n++] = '.';
            break;
        }
    }
    buf[n] = 0;
    return buf;
}

/* Formats "function NAME, offset PC: reason" (pc < 0: no offset; pc <= -2: exception
 * entry -pc-2) and returns -1. */
__attribute__((format(printf, 3, 4)))
static int fail(verifier *v, long pc, const char *fmt, ...)
{
    char name[80], why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *fn = safe_name(v->c, name, sizeof name);
    if (!v->err || !v->errlen)
        return -1;
    if (pc >= 0)
        snprintf(v->err, v->errlen, "function %s, offset %ld: %s", fn, pc, why);
    else if (pc <= -2)
        snprintf(v->err, v->errlen, "function %s, exception entry %ld: %s", fn, -pc - 2, why);
    else
        snprintf(v->err, v->errlen, "function %s: %s", fn, why);
    return -1;
}

#define NO_PC (-1L)
#define EXC_PC(i) (-2L - (long)(i))

static int check_structure(verifier *v)
{
    const vm_code *c = v->c;
    if (c->flags & ~(uint32_t)CO_MODULE)
        return fail(v, NO_PC, "unknown code flags 0x%x", (unsigned)c->flags);
    if (!c->name)
        return fail(v, NO_PC, "code object has no name");
    if (c->ncode < 1)
        return fail(v, NO_PC, "empty code");
    if (c->ncode > VERIFY_MAX_CODE)
        return fail(v, NO_PC, "%u instructions exceed the limit of %u", c->ncode, VERIFY_MAX_CODE);
    if (c->nlocals > VERIFY_MAX_FRAME || c->maxstack > VERIFY_MAX_FRAME ||
        c->nlocals + c->maxstack > VERIFY_MAX_FRAME)
        return fail(v, NO_PC, "frame of %u locals and %u stack slots exceeds the limit of %u",
                    c->nlocals, c->maxstack, VERIFY_MAX_FRAME);
    if (c->nparams > c->nlocals)
        return fail(v, NO_PC, "%u parameters but only %u locals", c->nparams, c->nlocals);
    if (c->flags & CO_MODULE) {
        if (c->nparams || c->nlocals)
            return fail(v, NO_PC, "module body has %u parameters and %u locals (must be 0)",
                        c->nparams, c->nlocals);
        if (c->entry_depth > c->maxstack)
            return fail(v, NO_PC, "entry stack depth %u exceeds declared maximum %u",
                        c->entry_depth, c->maxstack);
    } else if (c->entry_depth)
        return fail(v, NO_PC, "function has entry stack depth %u (must be 0)", c->entry_depth);
    if (!c->code || !c->lines)
        return fail(v, NO_PC, "missing code or line table");
    if ((c->nconsts && !c->consts) || (c->nnames && !c->names) ||
        (c->nlocals && !c->localnames) || (c->nexc && !c->exc))
        return fail(v, NO_PC, "missing constant, name, local-name or exception table");
    for (uint32_t i = 0; i < c->nnames; i++)
        if (!c->names[i])
            return fail(v, NO_PC, "name %u missing", i);
    for (uint32_t i = 0; i < c->nlocals; i++)
        if (!c->localnames[i])
            return fail(v, NO_PC, "local name %u missing", i);
    return 0;
}

static int check_operands(verifier *v)
{
    const vm_code *c = v->c;
    for (uint32_t pc = 0; pc < c->ncode; pc++) {
        instr in = c->code[pc];
        unsigned op = INSTR_OP(in);
        uint32_t arg = INSTR_ARG(in);
        if (op >= OP__COUNT)
            return fail(v, pc, "invalid opcode %u", op);
        const char *nm = op_name(op);
        unsigned fl = op_flags(op);
        switch (op_kind_of(op)) {
        case OPK_NONE:
            if (arg)
                return fail(v, pc, "%s takes no operand (has %u)", nm, arg);
            break;
        case OPK_CONST:
            if (arg >= c->nconsts)
                return fail(v, pc, "%s: constant index %u out of range (%u constants)", nm,
                            arg, c->nconsts);
            break;
        case OPK_LOCAL:
            if (arg >= c->nlocals)
                return fail(v, pc, "%s: local index %u out of range (%u locals)", nm, arg,
                            c->nlocals);
            break;
        case OPK_NAME:
            if (arg >= c->nnames)
                return fail(v, pc, "%s: name index %u out of range (%u names)", nm, arg,
                            c->nnames);
            break;
        case OPK_JUMP:
            if (arg >= c->ncode)
                return fail(v, pc, "%s: jump target %u outside the code (%u instructions)", nm,
                            arg, c->ncode);
            if ((fl & OPF_BACK) && arg > pc)
                return fail(v, pc, "%s: target %u is not backward", nm, arg);
            if (!(fl & OPF_BACK) && arg <= pc)
                return fail(v, pc, "%s: target %u is not forward", nm, arg);
            break;
        case OPK_COUNT:
        case OPK_IMM:
            break;
        }
        if (op == OP_HALT && !(c->flags & CO_MODULE))
            return fail(v, pc, "HALT outside a module body");
    }
    if (!(c->flags & CO_MODULE) && INSTR_OP(c->code[0]) != OP_RESUME)
        return fail(v, 0, "function does not start with RESUME (every call must poll)");
    unsigned last = INSTR_OP(c->code[c->ncode - 1]);
    if (!(op_flags(last) & OPF_END))
        return fail(v, c->ncode - 1, "%s at the end of the code falls through past the end",
                    op_name(last));
    return 0;
}

static int check_exc_table(verifier *v)
{
    const vm_code *c = v->c;
    for (uint32_t i = 0; i < c->nexc; i++) {
        const vm_exc_entry *e = &c->exc[i];
        if (e->start >= e->end || e->end > c->ncode)
            return fail(v, EXC_PC(i), "range [%u, %u) invalid (%u instructions)", e->start,
                        e->end, c->ncode);
        if (e->target >= c->ncode)
            return fail(v, EXC_PC(i), "handler target %u outside the code (%u instructions)",
                        e->target, c->ncode);
        if ((uint64_t)e->depth + 1 > c->maxstack)
            return fail(v, EXC_PC(i), "handler depth %llu exceeds declared maximum %u",
                        (unsigned long long)e->depth + 1, c->maxstack);
    }
    return 0;
}

/* Runs the flow analysis (flow.c) on the code and its exception table, and words its
 * failure. */
static int check_flow(verifier *v)
{
    const vm_code *c = v->c;
    flow_entry *exc = vm_malloc((c->nexc ? c->nexc : 1) * sizeof *exc);
    if (!exc)
        return fail(v, NO_PC, "out of memory");
    for (uint32_t k = 0; k < c->nexc; k++)
        exc[k] = (flow_entry){c->exc[k].start, c->exc[k].end, c->exc[k].target, c->exc[k].depth};
    flow_code f = {.code = c->code, .ncode = c->ncode,
                   .entry_depth = (c->flags & CO_MODULE) ? c->entry_depth : 0,
                   .maxstack = c->maxstack, .exc = exc, .nexc = c->nexc};
    int rc = flow_analyze(&f);
    vm_free(exc);
    if (!rc)
        return 0;
    const flow_failure *e = &f.fail;
    long long depth = e->depth, other = e->other, limit = e->limit;
    const char *nm = op_name(INSTR_OP(c->code[e->pc]));
    switch (e->kind) {
    case FLOW_MISMATCH:
        if (e->from < 0)
            return fail(v, e->pc, "stack depth mismatch (%lld vs %lld) at the handler of "
                        "exception entry %u", depth, other, e->entry);
        return fail(v, e->pc, "stack depth mismatch (%lld vs %lld, from offset %lld)", depth,
                    other, (long long)e->from);
    case FLOW_UNDERFLOW:
        return fail(v, e->pc, "stack underflow (%s pops %lld, depth %lld)", nm, other, depth);
    case FLOW_OVERFLOW:
        return fail(v, e->pc, "stack depth %lld exceeds declared maximum %lld", other, limit);
    case FLOW_UNWIND:
        if (other != depth)
            return fail(v, e->pc, "%s leaves stack depth %lld, below the depth %lld that "
                        "exception entry %u unwinds to", nm, other, limit, e->entry);
        return fail(v, e->pc, "stack depth %lld is below the depth %lld that exception entry "
                    "%u unwinds to", other, limit, e->entry);
    case FLOW_OK:
    case FLOW_NOMEM:
        break;
    }
    return fail(v, NO_PC, "out of memory");
}

int vm_verify_code(const vm_code *c, char *err, size_t errlen)
{
    verifier v = {c, err, errlen};
    if (check_structure(&v) || check_operands(&v) || check_exc_table(&v) || check_flow(&v))
        return -1;
    return 0;
}
