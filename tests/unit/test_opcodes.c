/* SPDX-License-Identifier: MIT */
/* Unit tests of the opcode table (opcodes/opcodes.def, opcodes.c) and of quickening
 * (vm/core/quicken.c): names, lookups, flags, stack effects, the superinstruction rows, and the
 * execution copy they produce.  No runtime needed except for the quickening test. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "opcodes/opcodes.h"
#include "vm/api/run.h"
#include "vm/api/gilvm.h"
#include "vm/toolchain/module.h"

/* The SUPER rows, read the way quicken.c reads them. */
static const struct {
    const char *name;
    unsigned op, n, ops[5];
} supers[] = {
#define OP(name, kind, pop, push, jpush, flags, picture)
#define SUPER(name, n, i1, i2, i3, i4, i5) {#name, OP_##name, n, {OP_##i1, OP_##i2, OP_##i3, OP_##i4, OP_##i5}},
#include "opcodes/opcodes.def"
#undef SUPER
#undef OP
};
#define NSUPERS (sizeof supers / sizeof supers[0])

/* Sample operands for operand-dependent stack effects. */
static const uint32_t sample_args[] = {0, 1, 2, 3, 7, 255, 1000, OPARG_MAX};

START_TEST(names_unique_and_lookup_round_trips)
{
    ck_assert_int_gt(OP__COUNT, 0);
    for (unsigned op = 0; op < OP__COUNT; op++) {
        const char *n = op_name(op);
        ck_assert_ptr_nonnull(n);
        ck_assert_int_gt(strlen(n), 0);
        for (const char *p = n; *p; p++)
            ck_assert_msg((*p >= 'A' && *p <= 'Z') || *p == '_' || (*p >= '0' && *p <= '9'),
                          "mnemonic %s has character '%c'", n, *p);
        for (unsigned other = 0; other < op; other++)
            ck_assert_msg(strcmp(n, op_name(other)) != 0, "%s appears twice", n);
        ck_assert_int_eq(op_lookup(n, (unsigned)strlen(n)), (int)op);
    }
    ck_assert_ptr_null(op_name(OP__COUNT));
    ck_assert_ptr_null(op_name(255));
    ck_assert_ptr_null(op_name(1u << 20));
}
END_TEST

START_TEST(lookup_rejects_non_mnemonics)
{
    ck_assert_int_eq(op_lookup("", 0), -1);
    ck_assert_int_eq(op_lookup("LOAD", 4), -1);                /* a prefix */
    ck_assert_int_eq(op_lookup("LOAD_CONSTX", 11), -1);        /* a longer name */
    ck_assert_int_eq(op_lookup("load_const", 10), -1);         /* case folding is asm.c's */
    ck_assert_int_eq(op_lookup("LOAD_CONST", 4), -1);          /* length counts, not NUL */
    ck_assert_int_eq(op_lookup("POPX", 3), OP_POP);            /* ... in both directions */
    for (size_t i = 0; i < NSUPERS; i++)                       /* never in files */
        ck_assert_msg(op_lookup(supers[i].name, (unsigned)strlen(supers[i].name)) == -1,
                      "superinstruction %s is an assembler mnemonic", supers[i].name);
}
END_TEST

START_TEST(poll_flags)
{
    ck_assert_uint_ne(op_flags(OP_RESUME) & OPF_POLL, 0);
    ck_assert_uint_ne(op_flags(OP_JUMP_BACKWARD) & OPF_POLL, 0);
    for (unsigned op = 0; op < OP__COUNT; op++) {
        unsigned f = op_flags(op);
        ck_assert_msg((f & ~(unsigned)(OPF_POLL | OPF_JUMP | OPF_BACK | OPF_END)) == 0,
                      "%s has unknown flags %#x", op_name(op), f);
        if (f & OPF_BACK)
            ck_assert_msg((f & OPF_JUMP) && (f & OPF_POLL),
                          "%s jumps backward but does not poll or is not a jump", op_name(op));
        if (f & OPF_POLL)
            ck_assert_msg(op == OP_RESUME || op == OP_JUMP_BACKWARD,
                          "%s polls; only RESUME and JUMP_BACKWARD may", op_name(op));
    }
    /* The only backward jump is JUMP_BACKWARD: the verifier's "every loop polls" rests on it. */
    for (unsigned op = 0; op < OP__COUNT; op++)
        if (op_flags(op) & OPF_BACK)
            ck_assert_uint_eq(op, OP_JUMP_BACKWARD);
}
END_TEST

START_TEST(jump_kinds_and_flags_agree)
{
    for (unsigned op = 0; op < OP__COUNT; op++) {
        int is_jump_kind = op_kind_of(op) == OPK_JUMP;
        int has_jump_flag = (op_flags(op) & OPF_JUMP) != 0;
        ck_assert_msg(is_jump_kind == has_jump_flag, "%s: operand kind %d, OPF_JUMP %d",
                      op_name(op), op_kind_of(op), has_jump_flag);
        ck_assert_int_le(op_kind_of(op), OPK_IMM);
    }
    unsigned ends[] = {OP_HALT, OP_RETURN, OP_RAISE, OP_RERAISE, OP_JUMP_FORWARD,
                       OP_JUMP_BACKWARD};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        ck_assert_msg(op_flags(ends[i]) & OPF_END, "%s must be OPF_END", op_name(ends[i]));
    unsigned conds[] = {OP_POP_JUMP_IF_FALSE, OP_POP_JUMP_IF_TRUE, OP_FOR_ITER};
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++)
        ck_assert_msg(!(op_flags(conds[i]) & OPF_END), "%s falls through", op_name(conds[i]));
}
END_TEST

START_TEST(stack_effects)
{
    for (unsigned op = 0; op < OP__COUNT; op++)
        for (size_t k = 0; k < sizeof sample_args / sizeof sample_args[0]; k++) {
            uint32_t a = sample_args[k];
            ck_assert_msg(op_pops(op, a) >= 0, "%s pops %ld", op_name(op), op_pops(op, a));
            ck_assert_msg(op_pushes(op, a) >= 0, "%s pushes %ld", op_name(op), op_pushes(op, a));
            ck_assert_msg(op_jump_pushes(op, a) >= 0, "%s", op_name(op));
            if (!(op_flags(op) & OPF_JUMP))
                ck_assert_msg(op_jump_pushes(op, a) == 0, "%s does not jump", op_name(op));
        }
    /* Operand-dependent rows, as the stack pictures say. */
    ck_assert_int_eq(op_pops(OP_CALL, 3), 4);
    ck_assert_int_eq(op_pushes(OP_CALL, 3), 1);
    ck_assert_int_eq(op_pops(OP_BUILD_LIST, 5), 5);
    ck_assert_int_eq(op_pops(OP_BUILD_TUPLE, 0), 0);
    ck_assert_int_eq(op_pops(OP_BUILD_DICT, 4), 8);
    ck_assert_int_eq(op_pops(OP_BUILD_DICT, OPARG_MAX), 2L * OPARG_MAX);
    ck_assert_int_eq(op_pops(OP_CALL, OPARG_MAX), (long)OPARG_MAX + 1);
    /* A few fixed pictures. */
    ck_assert_int_eq(op_pops(OP_ROT3, 0), 3);
    ck_assert_int_eq(op_pushes(OP_ROT3, 0), 3);
    ck_assert_int_eq(op_pops(OP_OVER, 0), 2);
    ck_assert_int_eq(op_pushes(OP_OVER, 0), 3);
    ck_assert_int_eq(op_pops(OP_FOR_ITER, 0), 1);
    ck_assert_int_eq(op_pushes(OP_FOR_ITER, 0), 2);
    ck_assert_int_eq(op_jump_pushes(OP_FOR_ITER, 0), 0);
    ck_assert_int_eq(op_pops(OP_PUSH_EXC_INFO, 0), 1);
    ck_assert_int_eq(op_pushes(OP_PUSH_EXC_INFO, 0), 2);
    ck_assert_int_eq(op_pops(OP_CHECK_EXC_MATCH, 0), 2);
    ck_assert_int_eq(op_pushes(OP_CHECK_EXC_MATCH, 0), 2);
    ck_assert_int_eq(op_pops(OP_SET_ITEM, 0), 3);
    ck_assert_int_eq(op_pushes(OP_SET_ITEM, 0), 0);
    /* Operands of kind NONE: the encoding leaves them 0. */
    ck_assert_uint_eq(INSTR_OP(INSTR(OP_ADD, 0)), OP_ADD);
    ck_assert_int_eq(INSTR_IMM(INSTR(OP_LOAD_INT, (uint32_t)IMM_MIN & OPARG_MAX)), IMM_MIN);
    ck_assert_int_eq(INSTR_IMM(INSTR(OP_LOAD_INT, (uint32_t)-1 & OPARG_MAX)), -1);
    ck_assert_int_eq(INSTR_IMM(INSTR(OP_LOAD_INT, IMM_MAX)), IMM_MAX);
    ck_assert_uint_eq(INSTR_ARG(INSTR(OP_CALL, OPARG_MAX)), OPARG_MAX);
}
END_TEST

START_TEST(superinstruction_rows)
{
    ck_assert_int_gt(NSUPERS, 0);
    ck_assert_int_eq(OP__SUPER_BASE + 1, OP__COUNT);
    ck_assert_int_le(OP__ALL, 256);               /* an opcode is 8 bits; eval's table has 256 */
    ck_assert_int_eq(OP__ALL - OP__COUNT, (int)NSUPERS);
    for (size_t i = 0; i < NSUPERS; i++) {
        const char *nm = supers[i].name;
        ck_assert_msg(supers[i].op >= OP__COUNT && supers[i].op < 256, "%s = %u", nm,
                      supers[i].op);
        ck_assert_uint_eq(supers[i].op, OP__COUNT + i);
        ck_assert_msg(supers[i].n >= 2 && supers[i].n <= 5, "%s fuses %u", nm, supers[i].n);
        /* quicken.c tries the rows in order and takes the first match: longest first. */
        if (i)
            ck_assert_msg(supers[i].n <= supers[i - 1].n, "%s (%u) after a shorter row", nm,
                          supers[i].n);
        for (size_t j = 0; j < i; j++) {
            ck_assert_msg(strcmp(nm, supers[j].name) != 0, "%s appears twice", nm);
            ck_assert_msg(supers[i].n != supers[j].n ||
                          memcmp(supers[i].ops, supers[j].ops, sizeof supers[i].ops) != 0,
                          "%s fuses the same sequence as %s", nm, supers[j].name);
        }
        for (unsigned k = 0; k < 5; k++) {
            unsigned c = supers[i].ops[k];
            ck_assert_msg(c < OP__COUNT, "%s: component %u is not a file opcode", nm, k);
            if (k >= supers[i].n) {
                ck_assert_msg(c == OP_NOP, "%s: unused slot %u is %s", nm, k, op_name(c));
                continue;
            }
            ck_assert_msg(c != OP_NOP, "%s: component %u is NOP", nm, k);
            /* Polls stay where the verified code has them: only a last JUMP_BACKWARD polls,
             * which the superinstruction does in its place (eval.c). */
            ck_assert_msg(!(op_flags(c) & OPF_POLL) ||
                          (c == OP_JUMP_BACKWARD && k + 1 == supers[i].n),
                          "%s: component %s polls", nm, op_name(c));
            /* Only the last component may leave the straight line (jump or never fall
             * through); otherwise the fused work would skip a control transfer. */
            if (k + 1 < supers[i].n && !(k == 0 && c == OP_FOR_ITER))  /* takes its own jump */
                ck_assert_msg(!(op_flags(c) & (OPF_JUMP | OPF_END)),
                              "%s: component %s before the last transfers control", nm,
                              op_name(c));
            ck_assert_msg(c != OP_HALT && c != OP_RESUME, "%s: component %s cannot be fused",
                          nm, op_name(c));
            /* CALL only last: the fast path enters CALL's code with ip past it. */
            ck_assert_msg(c != OP_CALL || k + 1 == supers[i].n, "%s: CALL before the last",
                          nm);
        }
    }
}
END_TEST

/* ---- quickening, on code from the assembler ---- */

static void setup(void) { ck_assert_int_eq(gilvm_runtime_init(NULL), 0); }
static void teardown(void) { gilvm_runtime_finalize(0); }

/* Checks code->exec against code->code: same length; every slot either the verified
 * instruction or a superinstruction (with the first instruction's operand) whose row
 * matches the verified code there, the longest matching row; the operand decoded (a jump's
 * a byte offset from the next instruction); the handler the eval loop's for that opcode;
 * aux the global's cell for operand kind NAME, else NULL (CALL's cache is empty
 * until the code runs). */
static void check_exec(const vm_code *c)
{
    ck_assert_ptr_nonnull(c->exec);
    for (uint32_t p = 0; p < c->ncode; p++) {
        unsigned op = c->exec[p].op;
        instr w = c->code[p];
        op_kind k = op_kind_of(INSTR_OP(w));
        int32_t rel = (int32_t)INSTR_ARG(w) - (int32_t)(p + 1);   /* jumps: from the next */
        int32_t arg = k == OPK_IMM    ? INSTR_IMM(w)
                      : k == OPK_JUMP ? rel * (int32_t)sizeof(vm_xinstr)
                                      : (int32_t)INSTR_ARG(w);
        ck_assert_int_eq(c->exec[p].arg, arg);
        ck_assert_ptr_eq(c->exec[p].aux, k == OPK_NAME
                                             ? (void *)vm_global_cell(VM_INTERP(vm_main_thread()),
                                                                      c->names[INSTR_ARG(w)])
                                             : NULL);
        ck_assert_ptr_eq(c->exec[p].handler, vm_eval_handlers() ? vm_eval_handlers()[op] : NULL);
        int want = -1;                  /* the row quicken must pick here, by table order */
        for (size_t k = 0; k < NSUPERS && want < 0; k++) {
            unsigned j = 0;
            while (j < supers[k].n && p + j < c->ncode &&
                   INSTR_OP(c->code[p + j]) == supers[k].ops[j])
                j++;
            if (j == supers[k].n)
                want = (int)k;
        }
        if (vm_eval_handlers() && want >= 0)    /* switch dispatch: no superinstructions */
            ck_assert_msg(op == supers[want].op, "offset %u: %s, want %s", p,
                          op < OP__COUNT ? op_name(op) : "a super", supers[want].name);
        else
            ck_assert_msg(op == INSTR_OP(c->code[p]), "offset %u: rewritten without a row", p);
    }
}

START_TEST(quicken_execution_copy)
{
    static const char src[] =
        ".func f(a, b)\n"
        "    .local c\n"
        "    LOAD_LOCAL a\n      LOAD_LOCAL b\n    LT\n    POP_JUMP_IF_FALSE x\n"
        "    LOAD_LOCAL a\n      LOAD_INT 5\n      ADD\n   STORE_LOCAL c\n"
        "    LOAD_LOCAL a\n      LOAD_INT -3\n     SUB\n   POP\n"
        "    LOAD_GLOBAL print\n LOAD_LOCAL c\n    CALL 1\n  POP\n"
        "x:  LOAD_LOCAL a\n      LOAD_INT 2\n      LE\n    POP_JUMP_IF_FALSE y\n"
        "    LOAD_LOCAL c\n      RETURN\n"
        "y:  LOAD_INT 1\n        LOAD_INT 2\n      GT\n    POP_JUMP_IF_TRUE z\n"
        "z:  LOAD_LOCAL b\n      RETURN\n"
        ".end\n"
        "    LOAD_GLOBAL f\n     LOAD_INT 1\n      LOAD_INT 2\n  CALL 2\n  POP\n";
    vm_module m;
    char err[512] = "";
    vm_thread *t = vm_main_thread();
    ck_assert_msg(asm_assemble(t, "q.gasm", src, sizeof src - 1, 0, &m, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(vm_module_verify(&m, "q.gasm", err, sizeof err), 0);
    vm_code *f = m.codes[1];
    /* The verified code is what the file holds; keep a copy to see that it is untouched. */
    instr before[64];
    ck_assert_uint_le(f->ncode, 64);
    memcpy(before, f->code, f->ncode * sizeof(instr));
    ck_assert_int_eq(vm_module_link(t, &m), 0);
    ck_assert_int_eq(memcmp(before, f->code, f->ncode * sizeof(instr)), 0);
    check_exec(f);
    check_exec(m.codes[0]);
    if (vm_eval_handlers()) {
        /* f: RESUME, then LOAD_LOCAL a, LOAD_LOCAL b, LT, POP_JUMP_IF_FALSE. */
        ck_assert_uint_eq(f->exec[0].op, OP_RESUME);
        ck_assert_uint_eq(f->exec[1].op, OP_LL_LT_JUMP_IF_FALSE);
        ck_assert_uint_eq(f->exec[3].op, OP_LT_JUMP_IF_FALSE);
        ck_assert_uint_eq(f->exec[5].op, OP_LOCAL_ADD_INT_STORE);
        ck_assert_uint_eq(f->exec[9].op, OP_LOCAL_SUB_INT);
        /* Every opcode, file or super, has a handler to thread to. */
        for (unsigned op = 0; op < OP__ALL; op++)
            ck_assert_ptr_nonnull(vm_eval_handlers()[op]);
    }
    /* Quickening twice gives the same copy (the REPL relinks). */
    vm_xinstr again[64];
    const vm_xinstr *exec = f->exec;
    memcpy(again, f->exec, f->ncode * sizeof *f->exec);
    vm_quicken(VM_INTERP(vm_main_thread()), f);
    ck_assert_ptr_eq(f->exec, exec);        /* in place: functions point into it */
    ck_assert_int_eq(memcmp(again, f->exec, f->ncode * sizeof *f->exec), 0);
    vm_module_free(&m);
}
END_TEST

Suite *suite_opcodes(void)
{
    Suite *s = suite_create("opcodes");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, names_unique_and_lookup_round_trips);
    tcase_add_test(tc, lookup_rejects_non_mnemonics);
    tcase_add_test(tc, poll_flags);
    tcase_add_test(tc, jump_kinds_and_flags_agree);
    tcase_add_test(tc, stack_effects);
    tcase_add_test(tc, superinstruction_rows);
    suite_add_tcase(s, tc);
    TCase *tq = tcase_create("quicken");
    tcase_add_checked_fixture(tq, setup, teardown);
    tcase_set_timeout(tq, 30);
    tcase_add_test(tq, quicken_execution_copy);
    suite_add_tcase(s, tq);
    return s;
}
