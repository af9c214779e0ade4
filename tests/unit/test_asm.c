/* SPDX-License-Identifier: MIT */
/* Unit tests of the assembler and disassembler (vm/toolchain/asm.c, vm/toolchain/dis.c): every error path's
 * file:line:col message, literals of every type, constant and name tables, labels and jump
 * directions, exception tables, stack depths, and dis -> asm round trips. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/api/run.h"
#include "vm/api/gilvm.h"
#include "vm/toolchain/module.h"

static vm_thread *T;
static char err[512];
static vm_module M;

static void setup(void)
{
    ck_assert_int_eq(gilvm_runtime_init(NULL), 0);
    T = vm_main_thread();
    memset(&M, 0, sizeof M);
}

static int assemble_n(const char *src, size_t len, uint32_t depth, vm_module *m)
{
    memset(err, 0, sizeof err);
    return asm_assemble(T, "t.gasm", src, len, depth, m, err, sizeof err);
}

/* Assembles into M, freeing the previous M's codes array. */
static int assemble(const char *src)
{
    vm_module_free(&M);
    return assemble_n(src, strlen(src), 0, &M);
}

static void teardown(void) { vm_module_free(&M); }

#define OK(src) ck_assert_msg(assemble(src) == 0, "unexpected error: %s", err)

/* Assembling `src` fails with a message containing `want` (which may include the
 * "t.gasm:LINE:COL: " prefix), on one line. */
#define BAD(src, want)                                                                  \
    do {                                                                                \
        ck_assert_msg(assemble(src) == -1, "assembled but should fail: %s", (src));    \
        ck_assert_msg(strstr(err, (want)) != NULL, "want \"%s\", got \"%s\"", (want), err); \
        ck_assert_msg(strncmp(err, "t.gasm:", 7) == 0, "no file prefix: %s", err);     \
        ck_assert_msg(!strchr(err, '\n'), "message spans lines: %s", err);              \
        ck_assert_ptr_null(M.codes);                                                    \
    } while (0)

static vm_code *body(void) { return M.codes[0]; }

static instr I(unsigned op, uint32_t arg) { return INSTR(op, arg & OPARG_MAX); }

static void code_is(const vm_code *c, const instr *want, uint32_t n)
{
    ck_assert_uint_eq(c->ncode, n);
    for (uint32_t i = 0; i < n; i++)
        ck_assert_msg(c->code[i] == want[i], "instruction %u: %s %u, want %s %u", i,
                      op_name(INSTR_OP(c->code[i])), INSTR_ARG(c->code[i]),
                      op_name(INSTR_OP(want[i])), INSTR_ARG(want[i]));
}

#define CODE_IS(c, ...)                                                                 \
    do {                                                                                \
        const instr want_[] = {__VA_ARGS__};                                            \
        code_is((c), want_, sizeof want_ / sizeof want_[0]);                            \
    } while (0)

static int str_is(const vm_str *s, const char *want, size_t n)
{
    return s && s->len == n && memcmp(s->data, want, n) == 0;
}

#define STR_IS(s, lit) str_is((s), (lit), sizeof(lit) - 1)

/* ---- module shape ---- */

START_TEST(empty_module)
{
    OK("");
    ck_assert_uint_eq(M.ncodes, 1);
    vm_code *c = body();
    CODE_IS(c, I(OP_HALT, 0));
    ck_assert_uint_eq(c->flags & CO_MODULE, CO_MODULE);
    ck_assert(STR_IS(c->name, "<module>"));
    ck_assert(STR_IS(c->file, "t.gasm"));
    ck_assert_uint_eq(c->nparams, 0);
    ck_assert_uint_eq(c->nlocals, 0);
    ck_assert_uint_eq(c->maxstack, 0);
    ck_assert_uint_eq(c->nexc, 0);
    vm_module_free(&M);

    OK("; only a comment\n\n   \t\n");
    CODE_IS(body(), I(OP_HALT, 0));
}
END_TEST

START_TEST(body_halt_and_entry_depth)
{
    OK("NOP\nHALT\n");
    CODE_IS(body(), I(OP_NOP, 0), I(OP_HALT, 0));       /* no second HALT */

    OK("LOAD_INT 1\nPOP\n");
    CODE_IS(body(), I(OP_LOAD_INT, 1), I(OP_POP, 0), I(OP_HALT, 0));
    ck_assert_uint_eq(body()->maxstack, 1);
    ck_assert_uint_eq(body()->lines[2], 2);             /* implicit HALT: last line */

    OK("HALT\nend:\n");                                 /* a label at the end needs a HALT */
    CODE_IS(body(), I(OP_HALT, 0), I(OP_HALT, 0));

    vm_module m;
    ck_assert_int_eq(assemble_n("ADD\n", 4, 2, &m), 0);
    ck_assert_uint_eq(m.codes[0]->entry_depth, 2);
    ck_assert_uint_eq(m.codes[0]->maxstack, 2);
    vm_module_free(&m);
    ck_assert_int_eq(assemble_n("ADD\n", 4, 1, &m), -1);
    ck_assert_msg(strstr(err, "t.gasm:1:1: stack underflow: ADD needs 2 values, the stack holds 1"),
                  "%s", err);
    ck_assert_int_eq(assemble_n("POP\n", 4, 3, &m), 0);
    ck_assert_uint_eq(m.codes[0]->maxstack, 3);
    vm_module_free(&m);
}
END_TEST

START_TEST(functions)
{
    OK(".func add(a, b)\n"
       "    .local t, u\n"
       "    LOAD_LOCAL a\n"
       "    LOAD_LOCAL 1\n"
       "    ADD\n"
       "    STORE_LOCAL u\n"
       "    LOAD_LOCAL u\n"
       "    RETURN\n"
       ".end\n"
       ".func zero()\n"
       "    RESUME\n"
       "    LOAD_INT 0\n"
       "    RETURN\n"
       ".end\n"
       "LOAD_GLOBAL add\n"
       "POP\n");
    ck_assert_uint_eq(M.ncodes, 3);
    vm_code *f = M.codes[1];
    ck_assert(STR_IS(f->name, "add"));
    ck_assert(STR_IS(f->file, "t.gasm"));
    ck_assert_uint_eq(f->flags & CO_MODULE, 0);
    ck_assert_uint_eq(f->nparams, 2);
    ck_assert_uint_eq(f->nlocals, 4);
    ck_assert(STR_IS(f->localnames[0], "a"));
    ck_assert(STR_IS(f->localnames[1], "b"));
    ck_assert(STR_IS(f->localnames[2], "t"));
    ck_assert(STR_IS(f->localnames[3], "u"));
    CODE_IS(f, I(OP_RESUME, 0), I(OP_LOAD_LOCAL, 0), I(OP_LOAD_LOCAL, 1), I(OP_ADD, 0),
            I(OP_STORE_LOCAL, 3), I(OP_LOAD_LOCAL, 3), I(OP_RETURN, 0));
    ck_assert_uint_eq(f->lines[0], 1);                  /* implicit RESUME: the .func line */
    ck_assert_uint_eq(f->lines[1], 3);
    ck_assert_uint_eq(f->maxstack, 2);
    vm_code *z = M.codes[2];
    ck_assert(STR_IS(z->name, "zero"));
    CODE_IS(z, I(OP_RESUME, 0), I(OP_LOAD_INT, 0), I(OP_RETURN, 0));   /* one RESUME only */
    ck_assert_uint_eq(z->lines[0], 11);
    CODE_IS(body(), I(OP_LOAD_GLOBAL, 0), I(OP_POP, 0), I(OP_HALT, 0));
}
END_TEST

START_TEST(function_errors)
{
    BAD(".func f()\n  LOAD_NONE\n.end\n", "t.gasm:3:1: function f can fall off its end; add RETURN");
    BAD(".func f()\n.end\n", "t.gasm:2:1: function f can fall off its end; add RETURN");
    BAD(".func f()\n.func g()\n", "t.gasm:2:1: nested .func");
    BAD(".func f()\n LOAD_NONE\n RETURN\n", "t.gasm:1:1: unclosed .func f (missing .end)");
    BAD(".end\n", "t.gasm:1:1: .end without .func");
    BAD(".func f(a, a)\n", "t.gasm:1:12: duplicate parameter 'a'");
    BAD(".func f(a)\n .local b, a\n", "t.gasm:2:12: duplicate local 'a'");
    BAD(".local x\n", "t.gasm:1:1: .local outside .func");
    BAD(".func f()\n LOAD_LOCAL x\n", "t.gasm:2:13: unknown local 'x'");
    BAD("LOAD_LOCAL x\n", "t.gasm:1:12: unknown local 'x' (the module body has no locals");
    BAD(".func f(a)\n LOAD_LOCAL 1\n", "t.gasm:2:13: local index 1 out of range (function f has 1 local)");
    BAD(".func f()\n LOAD_NONE\n RETURN\n.end\n.func f()\n", "t.gasm:5:7: duplicate function f (first defined at line 1)");
    BAD(".func f()\n HALT\n", "t.gasm:2:2: HALT is only allowed in the module body");
    BAD(".func f\n", "t.gasm:1:8: expected '(' after the function name, found end of line");
    BAD(".func f(a b)\n", "t.gasm:1:11: expected ',' or ')' in the parameter list, found 'b'");
    BAD(".func ()\n", "t.gasm:1:7: expected a function name, found '('");
    BAD(".func f() x\n", "t.gasm:1:11: expected end of line after the parameter list, found 'x'");
    BAD(".func f()\n LOAD_NONE\n RETURN\nend:\n.end\n", "t.gasm:4:1: label end marks no instruction");
}
END_TEST

/* ---- literals ---- */

static value konst(uint32_t i)
{
    ck_assert_uint_lt(i, body()->nconsts);
    return body()->consts[i];
}

START_TEST(literal_scalars)
{
    OK("LOAD_CONST None\nLOAD_CONST True\nLOAD_CONST False\nLOAD_CONST 0\n"
       "LOAD_CONST -1\nLOAD_CONST 0x1F\nLOAD_CONST 0o17\nLOAD_CONST 0b101\n"
       "LOAD_CONST 1_000_000\nLOAD_CONST 9223372036854775807\n"
       "LOAD_CONST -9223372036854775808\nLOAD_CONST -0x8000000000000000\n"
       "LOAD_CONST 0XfF\nLOAD_CONST 0x_ff_ff\n");
    ck_assert_uint_eq(konst(0).tag, T_NONE);
    ck_assert_uint_eq(konst(1).tag, T_BOOL);
    ck_assert_int_eq(konst(1).u.i, 1);
    ck_assert_uint_eq(konst(2).tag, T_BOOL);
    ck_assert_int_eq(konst(2).u.i, 0);
    int64_t ints[] = {0, -1, 31, 15, 5, 1000000, INT64_MAX, INT64_MIN};
    for (int i = 0; i < 8; i++) {
        ck_assert_uint_eq(konst(3 + i).tag, T_INT);
        ck_assert_msg(konst(3 + i).u.i == ints[i], "const %d", 3 + i);
    }
    ck_assert_uint_eq(body()->nconsts, 13);       /* -0x8000... equals INT64_MIN */
    ck_assert_int_eq(konst(11).u.i, 255);
    ck_assert_int_eq(konst(12).u.i, 0xffff);
    ck_assert_uint_eq(body()->maxstack, 14);
}
END_TEST

START_TEST(literal_floats)
{
    OK("LOAD_CONST 1.5\nLOAD_CONST -2.0\nLOAD_CONST 1e9\nLOAD_CONST 1.5e-3\n"
       "LOAD_CONST inf\nLOAD_CONST -inf\nLOAD_CONST nan\nLOAD_CONST 2.\nLOAD_CONST 1E+2\n"
       "LOAD_CONST 1_0.2_5\nLOAD_CONST 1e999\n");
    double want[] = {1.5, -2.0, 1e9, 1.5e-3, INFINITY, -INFINITY, NAN, 2.0, 100.0, 10.25,
                     INFINITY};
    for (int i = 0; i < 7; i++) {
        ck_assert_uint_eq(konst((uint32_t)i).tag, T_FLOAT);
        if (isnan(want[i]))
            ck_assert(isnan(konst((uint32_t)i).u.f));
        else
            ck_assert_msg(konst((uint32_t)i).u.f == want[i], "const %d", i);
    }
    ck_assert(konst(7).u.f == 2.0);
    ck_assert(konst(8).u.f == 100.0);
    ck_assert(konst(9).u.f == 10.25);
    ck_assert_uint_eq(body()->nconsts, 10);       /* 1e999 overflows to inf, deduplicated */
}
END_TEST

START_TEST(literal_strings)
{
    OK("LOAD_CONST \"\"\n"
       "LOAD_CONST \"a\\n\\t\\r\\0\\\\\\\"\\'b\"\n"
       "LOAD_CONST \"\\x41\\xe9\\u{20AC}\\u{1F600}\"\n"
       "LOAD_CONST \"h\xc3\xa9 ; not a comment\"\n"
       "LOAD_CONST b\"\\x00\\xff\\n\"\n"
       "LOAD_CONST b\"\"\n");
    ck_assert_uint_eq(konst(0).tag, T_STR);
    ck_assert(STR_IS(AS_STR(konst(0)), ""));
    ck_assert(STR_IS(AS_STR(konst(1)), "a\n\t\r\0\\\"'b"));
    ck_assert(STR_IS(AS_STR(konst(2)), "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    ck_assert(STR_IS(AS_STR(konst(3)), "h\xc3\xa9 ; not a comment"));
    ck_assert_uint_eq(konst(4).tag, T_BYTES);
    ck_assert(STR_IS(AS_STR(konst(4)), "\0\xff\n"));
    ck_assert_uint_eq(konst(5).tag, T_BYTES);
    ck_assert_uint_eq(AS_STR(konst(5))->len, 0);
}
END_TEST

START_TEST(literal_tuples)
{
    OK("LOAD_CONST ()\nLOAD_CONST (1,)\nLOAD_CONST ( 1 , \"x\" , (2.5, (None,)) , b\"y\", )\n");
    ck_assert_uint_eq(konst(0).tag, T_TUPLE);
    ck_assert_uint_eq(AS_TUPLE(konst(0))->len, 0);
    vm_tuple *one = AS_TUPLE(konst(1));
    ck_assert_uint_eq(one->len, 1);
    ck_assert_int_eq(one->items[0].u.i, 1);
    vm_tuple *t = AS_TUPLE(konst(2));
    ck_assert_uint_eq(t->len, 4);
    ck_assert_uint_eq(t->items[0].tag, T_INT);
    ck_assert(STR_IS(AS_STR(t->items[1]), "x"));
    vm_tuple *in = AS_TUPLE(t->items[2]);
    ck_assert_uint_eq(in->len, 2);
    ck_assert(in->items[0].u.f == 2.5);
    ck_assert_uint_eq(AS_TUPLE(in->items[1])->items[0].tag, T_NONE);
    ck_assert_uint_eq(t->items[3].tag, T_BYTES);
    ck_assert_uint_eq(body()->nconsts, 3);        /* items are not constants themselves */
}
END_TEST

START_TEST(literal_errors)
{
    BAD("LOAD_CONST 9223372036854775808\n", "t.gasm:1:12: integer '9223372036854775808' out of range");
    BAD("LOAD_CONST -9223372036854775809\n", "t.gasm:1:12: integer");
    BAD("LOAD_CONST 0x10000000000000000\n", "out of range (must fit in 64 bits)");
    BAD("LOAD_CONST 99999999999999999999999999999999999999999\n", "t.gasm:1:12: integer");
    BAD("LOAD_CONST 12abc\n", "t.gasm:1:14: invalid character 'a' in number");
    BAD("LOAD_CONST 0b102\n", "t.gasm:1:16: invalid character '2' in number");
    BAD("LOAD_CONST 0x\n", "t.gasm:1:14: expected digits after '0x'");
    BAD("LOAD_CONST 1__0\n", "t.gasm:1:13: '_' in a number must stand between digits");
    BAD("LOAD_CONST 1_\n", "t.gasm:1:13: '_' in a number");
    BAD("LOAD_CONST 1e\n", "t.gasm:1:14: expected digits in the exponent");
    BAD("LOAD_CONST 1.5.2\n", "t.gasm:1:15: invalid character '.' in number");
    BAD("LOAD_CONST - 1\n", "t.gasm:1:13: expected a number, found ' '");
    BAD("LOAD_CONST -x\n", "t.gasm:1:12: expected a number, found '-x'");
    BAD("LOAD_CONST foo\n", "t.gasm:1:12: expected a literal (None, True, False, a number");
    BAD("LOAD_CONST none\n", "found 'none'");
    BAD("LOAD_CONST @\n", "t.gasm:1:12: expected a literal");
    BAD("LOAD_CONST \"abc\n", "t.gasm:1:12: unterminated string literal");
    BAD("LOAD_CONST \"abc\\\n", "t.gasm:1:12: unterminated string literal");
    BAD("LOAD_CONST b\"abc\n", "t.gasm:1:13: unterminated bytes literal");
    BAD("LOAD_CONST \"a\\q\"\n", "t.gasm:1:14: unknown escape '\\q' in string literal");
    BAD("LOAD_CONST \"\\x4\"\n", "t.gasm:1:13: expected two hex digits after \\x");
    BAD("LOAD_CONST \"\\u{110000}\"\n", "t.gasm:1:13: invalid code point U+110000");
    BAD("LOAD_CONST \"\\u{D800}\"\n", "invalid code point U+D800");
    BAD("LOAD_CONST \"\\u{}\"\n", "t.gasm:1:13: expected \\u{HEX}");
    BAD("LOAD_CONST \"\\u{1234567}\"\n", "expected \\u{HEX}");
    BAD("LOAD_CONST \"\\u41\"\n", "expected \\u{HEX}");
    BAD("LOAD_CONST b\"\\u{41}\"\n", "t.gasm:1:14: \\u escape not allowed in a bytes literal");
    BAD("LOAD_CONST \"\xff\"\n", "t.gasm:1:12: string literal is not valid UTF-8");
    BAD("LOAD_CONST (1\n", "t.gasm:1:14: expected ',' or ')' in tuple literal, found end of line");
    BAD("LOAD_CONST (1)\n", "t.gasm:1:14: expected ',' before ')': a one-element tuple is written (x,)");
    BAD("LOAD_CONST (,)\n", "t.gasm:1:13: expected a literal");
    BAD("LOAD_CONST (1 2)\n", "t.gasm:1:15: expected ',' or ')'");
    BAD("LOAD_CONST 1 2\n", "t.gasm:1:14: expected end of line after LOAD_CONST, found '2'");
    BAD("LOAD_CONST\n", "t.gasm:1:11: expected a literal after LOAD_CONST");
}
END_TEST

/* ---- operands ---- */

START_TEST(operands)
{
    OK("LOAD_INT 8388607\nLOAD_INT -8388608\nLOAD_INT 0x10\nPOP\nPOP\nPOP\n"
       "load_none\nBUILD_LIST 1\nBUILD_TUPLE 0\nPOP\nPOP\nlabel:  nop ; lower case is fine\n");
    CODE_IS(body(), I(OP_LOAD_INT, 8388607), I(OP_LOAD_INT, (uint32_t)-8388608),
            I(OP_LOAD_INT, 16), I(OP_POP, 0), I(OP_POP, 0), I(OP_POP, 0), I(OP_LOAD_NONE, 0),
            I(OP_BUILD_LIST, 1), I(OP_BUILD_TUPLE, 0), I(OP_POP, 0), I(OP_POP, 0),
            I(OP_NOP, 0), I(OP_HALT, 0));
    ck_assert_int_eq(INSTR_IMM(body()->code[1]), -8388608);
    ck_assert_int_eq(INSTR_IMM(body()->code[0]), 8388607);

    BAD("LOAD_INT 8388608\n", "t.gasm:1:10: immediate 8388608 out of range for LOAD_INT (-8388608..8388607)");
    BAD("LOAD_INT -8388609\n", "t.gasm:1:10: immediate -8388609 out of range");
    BAD("LOAD_INT 1.5\n", "t.gasm:1:10: expected an integer, found the float '1.5'");
    BAD("LOAD_INT x\n", "t.gasm:1:10: expected an integer, found 'x'");
    BAD("LOAD_INT\n", "t.gasm:1:9: expected an integer after LOAD_INT");
    BAD("BUILD_LIST -1\n", "t.gasm:1:12: expected an unsigned integer after BUILD_LIST, found '-'");
    BAD("BUILD_LIST 16777216\n", "t.gasm:1:12: count 16777216 out of range for BUILD_LIST (0..16777215)");
    BAD("BUILD_LIST\n", "t.gasm:1:11: expected an unsigned integer after BUILD_LIST");
    BAD("NOP 1\n", "t.gasm:1:5: NOP takes no operand, found '1'");
    BAD("  FROB 1\n", "t.gasm:1:3: unknown opcode 'FROB'");
    BAD("LOAD_GLOBAL\n", "t.gasm:1:12: expected a global name after LOAD_GLOBAL");
    BAD("LOAD_GLOBAL 1\n", "t.gasm:1:13: expected a global name, found '1'");
    BAD("LOAD_GLOBAL \"\"\n", "t.gasm:1:13: expected a global name, found an empty string");
    BAD("JUMP_FORWARD\n", "t.gasm:1:13: expected a label after JUMP_FORWARD");
    BAD("JUMP_FORWARD 3\n", "t.gasm:1:14: expected a label after JUMP_FORWARD, found '3'");
    BAD("LOAD_LOCAL\n", "expected a local name or index after LOAD_LOCAL");
}
END_TEST

START_TEST(dedup)
{
    OK("LOAD_CONST 1\nLOAD_CONST 1.0\nLOAD_CONST True\nLOAD_CONST 1\nLOAD_CONST \"a\"\n"
       "LOAD_CONST \"a\"\nLOAD_CONST b\"a\"\nLOAD_CONST 0.0\nLOAD_CONST -0.0\n"
       "LOAD_CONST (1, 2)\nLOAD_CONST (1, 2)\nLOAD_CONST (1, 2.0)\nLOAD_CONST 0x1\n"
       "LOAD_CONST nan\nLOAD_CONST nan\nLOAD_CONST 1.0\n"
       "LOAD_GLOBAL x\nLOAD_GLOBAL y\nSTORE_GLOBAL x\nLOAD_GLOBAL \"y\"\n");
    vm_code *c = body();
    uint32_t want[] = {0, 1, 2, 0, 3, 3, 4, 5, 6, 7, 7, 8, 0, 9, 9, 1};
    for (uint32_t i = 0; i < 16; i++)
        ck_assert_msg(INSTR_ARG(c->code[i]) == want[i], "instruction %u: const %u, want %u", i,
                      INSTR_ARG(c->code[i]), want[i]);
    ck_assert_uint_eq(c->nconsts, 10);
    ck_assert_uint_eq(INSTR_ARG(c->code[16]), 0);
    ck_assert_uint_eq(INSTR_ARG(c->code[17]), 1);
    ck_assert_uint_eq(INSTR_ARG(c->code[18]), 0);
    ck_assert_uint_eq(INSTR_ARG(c->code[19]), 1);
    ck_assert_uint_eq(c->nnames, 2);
    ck_assert(STR_IS(c->names[0], "x"));
    ck_assert(STR_IS(c->names[1], "y"));

    /* each code object has its own tables */
    OK(".func f()\n LOAD_CONST 7\n LOAD_GLOBAL y\n RETURN\n.end\nLOAD_CONST 5\nLOAD_CONST 7\n"
       "LOAD_GLOBAL z\n");
    ck_assert_uint_eq(M.codes[1]->nconsts, 1);
    ck_assert_uint_eq(M.codes[0]->nconsts, 2);
    ck_assert_uint_eq(INSTR_ARG(M.codes[0]->code[1]), 1);
    ck_assert(STR_IS(M.codes[1]->names[0], "y"));
    ck_assert(STR_IS(M.codes[0]->names[0], "z"));
}
END_TEST

/* ---- labels and jumps ---- */

START_TEST(labels)
{
    OK("    LOAD_INT 3\n"
       "top: DUP\n"                             /* 1 */
       "    POP_JUMP_IF_FALSE done\n"           /* 2 */
       "    LOAD_INT 1\n"
       "    SUB\n"
       "    JUMP_BACKWARD top\n"                /* 5 */
       "done:\n"
       "again: POP\n"                           /* 6: two labels, one instruction */
       "    JUMP_FORWARD end\n"                 /* 7 */
       "end: x: JUMP_BACKWARD x\n");            /* 8: jump to itself */
    CODE_IS(body(), I(OP_LOAD_INT, 3), I(OP_DUP, 0), I(OP_POP_JUMP_IF_FALSE, 6),
            I(OP_LOAD_INT, 1), I(OP_SUB, 0), I(OP_JUMP_BACKWARD, 1), I(OP_POP, 0),
            I(OP_JUMP_FORWARD, 8), I(OP_JUMP_BACKWARD, 8), I(OP_HALT, 0));
    ck_assert_uint_eq(body()->maxstack, 2);

    /* labels are scoped: the same name in a function and the body */
    OK("L: NOP\n.func f()\nL: LOAD_NONE\n RETURN\n.end\nJUMP_BACKWARD L\n");
    CODE_IS(M.codes[1], I(OP_RESUME, 0), I(OP_LOAD_NONE, 0), I(OP_RETURN, 0));
    CODE_IS(body(), I(OP_NOP, 0), I(OP_JUMP_BACKWARD, 0), I(OP_HALT, 0));

    /* a label before the first instruction of a function marks that instruction, not the
     * implicit RESUME; before an explicit RESUME it marks the RESUME */
    OK(".func f()\ntop:\n NOP\n JUMP_BACKWARD top\n.end\n");
    CODE_IS(M.codes[1], I(OP_RESUME, 0), I(OP_NOP, 0), I(OP_JUMP_BACKWARD, 1));
    OK(".func f()\ntop:\n RESUME\n JUMP_BACKWARD top\n.end\n");
    CODE_IS(M.codes[1], I(OP_RESUME, 0), I(OP_JUMP_BACKWARD, 0));

    /* a jump to the end of the body lands on the implicit HALT */
    OK("JUMP_FORWARD out\nNOP\nout:\n");
    CODE_IS(body(), I(OP_JUMP_FORWARD, 2), I(OP_NOP, 0), I(OP_HALT, 0));
}
END_TEST

START_TEST(label_errors)
{
    BAD("JUMP_FORWARD nowhere\n", "t.gasm:1:14: undefined label nowhere in the module body");
    BAD(".func f()\n JUMP_FORWARD x\n.end\n", "t.gasm:2:15: undefined label x in function f");
    BAD("a: NOP\na: NOP\n", "t.gasm:2:1: duplicate label a (first defined at line 1)");
    BAD("L: NOP\nJUMP_FORWARD L\n",
        "t.gasm:2:14: JUMP_FORWARD must target a later instruction, but label L is not later; use JUMP_BACKWARD");
    BAD("L: JUMP_FORWARD L\n", "t.gasm:1:17: JUMP_FORWARD must target a later instruction");
    BAD("JUMP_BACKWARD L\nL: NOP\n",
        "t.gasm:1:15: JUMP_BACKWARD must target an earlier-or-same instruction, but label L is later; use JUMP_FORWARD");
    BAD("L: LOAD_NONE\nPOP_JUMP_IF_TRUE L\n",
        "t.gasm:2:18: POP_JUMP_IF_TRUE must target a later instruction, but label L is not later; only JUMP_BACKWARD jumps backward");
    BAD("LOAD_NONE\nGET_ITER\nL: FOR_ITER L\n", "t.gasm:3:13: FOR_ITER must target a later instruction");
    BAD("1abc: NOP\n", "t.gasm:1:1: expected an instruction, a label or a directive, found '1'");
}
END_TEST

/* ---- stack depth ---- */

START_TEST(stack_depth)
{
    BAD("POP\n", "t.gasm:1:1: stack underflow: POP needs 1 value, the stack holds 0");
    BAD("LOAD_INT 1\nCALL 1\n", "t.gasm:2:1: stack underflow: CALL needs 2 values, the stack holds 1");
    BAD("LOAD_NONE\nPOP_JUMP_IF_FALSE L\nLOAD_INT 1\nL: NOP\n",
        "t.gasm:4:1: stack depth mismatch at label L (0 vs 1)");
    BAD("LOAD_NONE\nPOP_JUMP_IF_FALSE L\nLOAD_INT 1\nJUMP_FORWARD L\nL: NOP\n",
        "t.gasm:4:14: stack depth mismatch at label L (0 vs 1)");
    BAD("L: NOP\nLOAD_INT 1\nJUMP_BACKWARD L\n", "t.gasm:3:15: stack depth mismatch at label L (0 vs 1)");
    BAD(".func f()\n LOAD_NONE\n .try H\n LOAD_NONE\n RETURN\n .end_try\nH: POP\n POP\n POP\n",
        "t.gasm:9:2: stack underflow: POP needs 1 value, the stack holds 0");

    /* FOR_ITER: 2 values on falling through, none on exhaustion */
    OK("LOAD_CONST (1, 2)\nGET_ITER\ntop: FOR_ITER done\nPOP\nJUMP_BACKWARD top\ndone:\n");
    ck_assert_uint_eq(body()->maxstack, 2);

    /* after an unconditional jump the depth comes from the label */
    OK("LOAD_INT 1\nLOAD_INT 2\nPOP_JUMP_IF_TRUE a\nJUMP_FORWARD b\na: LOAD_INT 5\nPOP\nb: POP\n");
    ck_assert_uint_eq(body()->maxstack, 2);

    /* code reached only by a later backward jump: the flow pass finds its depth */
    OK(".func f(x)\n"
       "    JUMP_FORWARD test\n"
       "body:\n"
       "    LOAD_INT 1\n LOAD_INT 2\n LOAD_INT 3\n BUILD_TUPLE 3\n POP\n"
       "test:\n"
       "    LOAD_LOCAL x\n"
       "    POP_JUMP_IF_FALSE out\n"
       "    JUMP_BACKWARD body\n"
       "out:\n"
       "    LOAD_NONE\n"
       "    RETURN\n"
       ".end\n");
    ck_assert_uint_eq(M.codes[1]->maxstack, 3);
    BAD(".func f(x)\n JUMP_FORWARD test\nbody:\n POP\n LOAD_NONE\n RETURN\ntest:\n"
        " JUMP_BACKWARD body\n.end\n", "t.gasm:4:2: stack underflow: POP needs 1 value");
}
END_TEST

/* ---- exception regions ---- */

START_TEST(try_regions)
{
    OK("LOAD_INT 7\n"                      /* 0 */
       ".try outer\n"
       "    NOP\n"                         /* 1 */
       "    .try inner\n"
       "        LOAD_INT 1\n"              /* 2 */
       "        POP\n"                     /* 3 */
       "    .end_try\n"
       "    .try empty\n"
       "    .end_try\n"
       "    LOAD_INT 2\n"                  /* 4 */
       "    POP\n"                         /* 5 */
       ".end_try\n"
       "JUMP_FORWARD done\n"               /* 6 */
       "inner: POP\n"                      /* 7: depth 2 */
       "JUMP_FORWARD done\n"               /* 8 */
       "outer: POP\n"                      /* 9 */
       "JUMP_FORWARD done\n"               /* 10 */
       "empty: POP\n"                      /* 11: never protected, depth still from .try */
       "done: POP\n");                     /* 12 */
    vm_code *c = body();
    ck_assert_uint_eq(c->nexc, 2);
    ck_assert_uint_eq(c->exc[0].start, 2);          /* inner first */
    ck_assert_uint_eq(c->exc[0].end, 4);
    ck_assert_uint_eq(c->exc[0].target, 7);
    ck_assert_uint_eq(c->exc[0].depth, 1);
    ck_assert_uint_eq(c->exc[1].start, 1);
    ck_assert_uint_eq(c->exc[1].end, 6);
    ck_assert_uint_eq(c->exc[1].target, 9);
    ck_assert_uint_eq(c->exc[1].depth, 1);
    ck_assert_uint_eq(c->maxstack, 2);

    /* same range twice: the inner one closes first */
    OK(".func f()\n.try a\n.try b\n LOAD_NONE\n RETURN\n.end_try\n.end_try\na: RETURN\nb: RETURN\n.end\n");
    c = M.codes[1];
    ck_assert_uint_eq(c->nexc, 2);
    ck_assert_uint_eq(c->exc[0].target, 4);
    ck_assert_uint_eq(c->exc[1].target, 3);
    ck_assert_uint_eq(c->exc[0].start, 1);          /* the implicit RESUME is outside */
    ck_assert_uint_eq(c->exc[0].end, 3);
    OK(".func f()\n.try a\n RESUME\n LOAD_NONE\n RETURN\n.end_try\na: RETURN\n.end\n");
    ck_assert_uint_eq(M.codes[1]->exc[0].start, 0);  /* an explicit one is inside */
    ck_assert_uint_eq(M.codes[1]->ncode, 4);

    /* the depth at a .try after an unconditional jump comes from the flow pass */
    OK(".func f(x)\n JUMP_FORWARD test\nbody:\n.try h\n LOAD_INT 1\n LOAD_INT 2\n POP\n POP\n"
       ".end_try\ntest:\n LOAD_LOCAL x\n POP_JUMP_IF_FALSE out\n JUMP_BACKWARD body\n"
       "h: POP\nout:\n LOAD_NONE\n RETURN\n.end\n");
    ck_assert_uint_eq(M.codes[1]->nexc, 1);
    ck_assert_uint_eq(M.codes[1]->exc[0].depth, 0);
    ck_assert_uint_eq(M.codes[1]->maxstack, 2);

    /* an exception must not unwind to slots the region has already popped */
    BAD("LOAD_GLOBAL print\n.try h\nLOAD_INT 1\nCALL 1\nPOP\n.end_try\nJUMP_FORWARD e\n"
        "h: POP\nPOP\ne: NOP\n",
        "t.gasm:4:1: CALL leaves 0 values on the stack, fewer than the 1 its .try (line 2) unwinds to");
    BAD("LOAD_NONE\n.try h\nPOP\nNOP\n.end_try\nJUMP_FORWARD e\nh: POP\nPOP\ne: NOP\n",
        "t.gasm:4:1: NOP leaves 0 values on the stack");
    OK("LOAD_NONE\n.try h\nPOP\n.end_try\nJUMP_FORWARD e\nh: POP\nPOP\ne: NOP\n");

    BAD(".try H\nNOP\n", "t.gasm:1:1: unclosed .try (missing .end_try)");
    BAD(".end_try\n", "t.gasm:1:1: .end_try without .try in the module body");
    BAD(".try\n", "t.gasm:1:5: expected a handler label after .try, found end of line");
    BAD(".try H\nNOP\n.end_try\n", "t.gasm:1:6: undefined label H");
    BAD(".func f()\n.try H\n LOAD_NONE\n RETURN\n.end\n", "t.gasm:2:1: unclosed .try");
    BAD(".try H\n.func f()\n .end_try\n", "t.gasm:3:2: .end_try without .try in function f");
    BAD("LOAD_NONE\n.try H\nNOP\n.end_try\nJUMP_FORWARD H\nH: NOP\n",
        "t.gasm:5:14: stack depth mismatch at label H (2 vs 1)");
}
END_TEST

/* ---- directives ---- */

START_TEST(lines_and_source)
{
    OK("NOP\n.line 100\nNOP\n\nNOP\n.line\nNOP\n.source \"orig.gasm\"\n");
    vm_code *c = body();
    ck_assert_uint_eq(c->lines[0], 1);
    ck_assert_uint_eq(c->lines[1], 100);
    ck_assert_uint_eq(c->lines[2], 100);
    ck_assert_uint_eq(c->lines[3], 7);
    ck_assert(STR_IS(c->file, "orig.gasm"));

    OK(".func f()\n LOAD_NONE\n RETURN\n.end\n.source \"x\"\n");  /* applies to the whole module */
    ck_assert(STR_IS(M.codes[1]->file, "x"));

    BAD(".line x\n", "t.gasm:1:7: expected an integer, found 'x'");
    BAD(".line -1\n", "t.gasm:1:7: expected a line number after .line, found '-'");
    BAD(".line 4294967296\n", "t.gasm:1:7: line number 4294967296 out of range");
    BAD(".source x\n", "t.gasm:1:9: expected a string after .source");
    BAD(".source \"a\"\n.source \"b\"\n", "t.gasm:2:1: duplicate .source");
    BAD(".frob\n", "t.gasm:1:1: unknown directive '.frob'");
    BAD(". func\n", "t.gasm:1:1: expected a directive name after '.'");
    BAD(".end_try extra\n", "t.gasm:1:1: .end_try without .try");
}
END_TEST

/* ---- hostile input ---- */

START_TEST(garbage)
{
    static const char nul[] = "NOP\n\0NOP\n";
    vm_module_free(&M);
    ck_assert_int_eq(assemble_n(nul, sizeof nul - 1, 0, &M), -1);
    ck_assert_msg(strstr(err, "t.gasm:2:1: expected an instruction, a label or a directive, found '\\x00'"),
                  "%s", err);
    static const char nul2[] = "LOAD_CONST \"a\0b\"\n; \0 in a comment\n";
    vm_module_free(&M);
    ck_assert_int_eq(assemble_n(nul2, sizeof nul2 - 1, 0, &M), 0);
    ck_assert_uint_eq(AS_STR(M.codes[0]->consts[0])->len, 3);

    /* a 100k-character line of each kind */
    size_t n = 100000;
    char *s = malloc(n + 64);
    memset(s, 'A', n);
    s[n] = 0;
    ck_assert_int_eq(assemble(s), -1);
    ck_assert_msg(strstr(err, "t.gasm:1:1: unknown opcode 'AAAA") && strlen(err) < 200, "%s", err);
    memcpy(s, "LOAD_CONST ", 11);
    memset(s + 11, '9', n - 11);
    ck_assert_int_eq(assemble(s), -1);
    ck_assert_msg(strstr(err, "out of range") && strlen(err) < 200, "%s", err);
    memcpy(s + n - 3, ".5", 3);
    ck_assert_int_eq(assemble(s), 0);           /* a 100k-digit float is still a float */
    ck_assert(isinf(M.codes[0]->consts[0].u.f));
    memset(s + 11, '(', n - 11);
    ck_assert_int_eq(assemble(s), -1);
    ck_assert_msg(strstr(err, "nested too deeply"), "%s", err);
    s[11] = '"';
    memset(s + 12, 'x', n - 12);
    ck_assert_int_eq(assemble(s), -1);
    ck_assert_msg(strstr(err, "t.gasm:1:12: unterminated string"), "%s", err);
    s[n - 1] = '"';
    ck_assert_int_eq(assemble(s), 0);
    ck_assert_uint_eq(AS_STR(M.codes[0]->consts[0])->len, n - 13);

    /* many nested regions and labels: no quadratic blow-up, no deep recursion */
    size_t k = 20000, o = 0;
    char *big = malloc(k * 64 + 100);
    for (size_t i = 0; i < k; i++)
        o += (size_t)sprintf(big + o, ".try H%zu\n", i);
    o += (size_t)sprintf(big + o, "NOP\n");
    for (size_t i = 0; i < k; i++)
        o += (size_t)sprintf(big + o, ".end_try\nJUMP_FORWARD E\nH%zu: POP\n", k - 1 - i);
    o += (size_t)sprintf(big + o, "E:\n");
    vm_module_free(&M);
    ck_assert_msg(assemble_n(big, o, 0, &M) == 0, "%s", err);
    ck_assert_uint_eq(M.codes[0]->nexc, k);
    ck_assert_uint_eq(M.codes[0]->maxstack, 1);

    /* pseudo-random bytes and pseudo-random tokens never crash */
    static const char *const toks[] = {
        "NOP", "LOAD_CONST", "(", ")", ",", "\"", "b\"", "\\", "0x", "1", "-", ".func", ".end",
        ".try", ".end_try", "L:", "L", "JUMP_FORWARD", "JUMP_BACKWARD", "POP", "RETURN", "\n",
        " ", ";", ".local", "LOAD_LOCAL", "1e", "_", "inf", ".line", ".source", "CALL", "\xff",
    };
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        int ntok = (int)(x % 40);
        for (int i = 0; i < ntok; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (round % 2) {
                s[len++] = (char)(x >> 24);
            } else {
                const char *t = toks[x % (sizeof toks / sizeof toks[0])];
                memcpy(s + len, t, strlen(t));
                len += strlen(t);
            }
        }
        vm_module m;
        if (assemble_n(s, len, (uint32_t)(x % 3), &m) == 0) {
            vm_module_free(&m);
        } else {
            ck_assert_msg(strncmp(err, "t.gasm:", 7) == 0 && !strchr(err, '\n'), "%s", err);
        }
    }
    free(s);
    free(big);
}
END_TEST

/* ---- disassembly round trips ---- */

static int same_value(value a, value b)
{
    if (a.tag != b.tag)
        return 0;
    switch (a.tag) {
    case T_NONE: return 1;
    case T_BOOL:
    case T_INT: return a.u.i == b.u.i;
    case T_FLOAT: return memcmp(&a.u.f, &b.u.f, sizeof(double)) == 0 || (isnan(a.u.f) && isnan(b.u.f));
    case T_STR:
    case T_BYTES:
        return str_is(AS_STR(a), AS_STR(b)->data, AS_STR(b)->len);
    case T_TUPLE:
        if (AS_TUPLE(a)->len != AS_TUPLE(b)->len)
            return 0;
        for (size_t i = 0; i < AS_TUPLE(a)->len; i++)
            if (!same_value(AS_TUPLE(a)->items[i], AS_TUPLE(b)->items[i]))
                return 0;
        return 1;
    default: return 0;
    }
}

static void same_code(const vm_code *a, const vm_code *b)
{
    ck_assert(str_is(a->name, b->name->data, b->name->len));
    ck_assert(str_is(a->file, b->file->data, b->file->len));
    ck_assert_uint_eq(a->flags, b->flags);
    ck_assert_uint_eq(a->nparams, b->nparams);
    ck_assert_uint_eq(a->nlocals, b->nlocals);
    ck_assert_uint_eq(a->maxstack, b->maxstack);
    ck_assert_uint_eq(a->ncode, b->ncode);
    ck_assert_int_eq(memcmp(a->code, b->code, a->ncode * sizeof(instr)), 0);
    ck_assert_int_eq(memcmp(a->lines, b->lines, a->ncode * sizeof(uint32_t)), 0);
    ck_assert_uint_eq(a->nconsts, b->nconsts);
    for (uint32_t i = 0; i < a->nconsts; i++)
        ck_assert_msg(same_value(a->consts[i], b->consts[i]), "constant %u differs", i);
    ck_assert_uint_eq(a->nnames, b->nnames);
    for (uint32_t i = 0; i < a->nnames; i++)
        ck_assert(str_is(a->names[i], b->names[i]->data, b->names[i]->len));
    for (uint32_t i = 0; i < a->nlocals; i++)
        ck_assert(str_is(a->localnames[i], b->localnames[i]->data, b->localnames[i]->len));
    ck_assert_uint_eq(a->nexc, b->nexc);
    if (a->nexc)
        ck_assert_int_eq(memcmp(a->exc, b->exc, a->nexc * sizeof(vm_exc_entry)), 0);
}

static char *dis_text(const vm_module *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(dis_module(f, m), 0);
    fclose(f);
    return buf;
}

/* Assembles src, disassembles, re-assembles, and checks both modules are identical, and
 * that disassembling again gives the same text. */
static void round_trip(const char *src)
{
    vm_module a, b;
    ck_assert_msg(assemble_n(src, strlen(src), 0, &a) == 0, "%s", err);
    char *text = dis_text(&a);
    memset(err, 0, sizeof err);
    ck_assert_msg(asm_assemble(T, "other.gasm", text, strlen(text), 0, &b, err, sizeof err) == 0,
                  "re-assembly failed: %s\n%s", err, text);
    ck_assert_uint_eq(a.ncodes, b.ncodes);
    for (uint32_t i = 0; i < a.ncodes; i++)
        same_code(a.codes[i], b.codes[i]);
    char *again = dis_text(&b);
    ck_assert_str_eq(text, again);
    free(text);
    free(again);
    vm_module_free(&a);
    vm_module_free(&b);
}

static const char *const programs[] = {
    /* recursion, locals, every operand kind */
    ".func fact(n)\n"
    "    .local acc, \"odd name\"\n"
    "    LOAD_LOCAL n\n    LOAD_INT 2\n    LT\n    POP_JUMP_IF_FALSE rec\n"
    "    LOAD_INT 1\n    RETURN\n"
    "rec: LOAD_LOCAL n\n    LOAD_GLOBAL fact\n    LOAD_LOCAL n\n    LOAD_INT -1\n    ADD\n"
    "    CALL 1\n    MUL\n    STORE_LOCAL \"odd name\"\n    LOAD_LOCAL 2\n    RETURN\n"
    ".end\n"
    ".func g()\n    RESUME\n    LOAD_CONST (1, -0.0, 0.1, 1e300, 5e-324, inf, -inf, nan, \"s\\n\\x01\\x7f\", b\"\\x00\\xff\\\\\", (), (True,), None, False)\n"
    "    LOAD_CONST \"h\xc3\xa9\\\"\xf0\x9f\x98\x80\\0\" \n    BUILD_LIST 2\n    RETURN\n.end\n"
    "LOAD_GLOBAL print\nLOAD_GLOBAL fact\nLOAD_INT 10\nCALL 1\nCALL 1\nPOP\n"
    "LOAD_GLOBAL \"weird global\"\nSTORE_GLOBAL x\n",

    /* loops, nested and repeated try regions, lines */
    ".source \"loops.gasm\"\n"
    "LOAD_CONST (1, 2, 3)\nGET_ITER\n"
    "top: FOR_ITER done\n"
    ".try h1\n"
    "  .try h2\n"
    "    .try h3\n"
    "      .line 77\n"
    "      LOAD_INT 1\n      DIV\n"
    "    .end_try\n"
    "  .end_try\n"
    "  .line\n"
    "  NOP\n"
    ".end_try\n"
    ".try h4\n"
    "  NOP\n"
    ".end_try\n"
    "POP\n"
    "JUMP_BACKWARD top\n"
    "h1: h2: h3: h4: POP\n"
    "    POP\n"
    "    JUMP_BACKWARD top\n"
    "done: LOAD_NONE\nPOP\nHALT\n",

    /* exception handling as in docs/assembly.md; a function with only a RETURN path via try */
    ".func safe_div(a, b)\n"
    "    .try handler\n"
    "    LOAD_LOCAL a\n    LOAD_LOCAL b\n    DIV\n    RETURN\n"
    "    .end_try\n"
    "handler:\n"
    "    PUSH_EXC_INFO\n    LOAD_GLOBAL ZeroDivisionError\n    CHECK_EXC_MATCH\n"
    "    POP_JUMP_IF_FALSE reraise\n    POP\n    POP_EXCEPT\n    LOAD_NONE\n    RETURN\n"
    "reraise:\n    SWAP\n    POP_EXCEPT\n    RERAISE\n"
    ".end\n",

    /* a region that starts at the first instruction of the body, and unknown-depth code */
    ".try h\nLOAD_NONE\nPOP\n.end_try\nJUMP_FORWARD t\nb: LOAD_INT 1\nPOP\nt: NOP\n"
    "JUMP_FORWARD out\nh: POP\nout:\n",

    /* labels and regions at offset 0 of a function, with and without RESUME in them */
    ".func a()\n.try h\nL: RESUME\n NOP\n JUMP_BACKWARD L\n.end_try\nh: RETURN\n.end\n"
    ".func b()\nL: .try h\n NOP\n JUMP_BACKWARD L\n.end_try\nh: RETURN\n.end\n",

    "",
};

START_TEST(dis_round_trip)
{
    for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++)
        round_trip(programs[i]);
}
END_TEST

START_TEST(dis_listing)
{
    OK(".func f(a)\n .local b\n LOAD_LOCAL a\n STORE_LOCAL b\n LOAD_CONST 2.0\n RETURN\n.end\n");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(dis_code(f, M.codes[1]), 0);
    ck_assert_int_eq(dis_code(f, M.codes[0]), 0);
    fclose(f);
    ck_assert_msg(strstr(buf, ".func f(a)"), "%s", buf);
    ck_assert_msg(strstr(buf, ".local b\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "STORE_LOCAL b"), "%s", buf);
    ck_assert_msg(strstr(buf, "LOAD_CONST 2.0"), "%s", buf);
    ck_assert_msg(strstr(buf, "; 3\n"), "offsets as comments: %s", buf);
    ck_assert_msg(strstr(buf, ".end\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "HALT"), "%s", buf);
    free(buf);
}
END_TEST

/* docs/assembly.md has a reference entry for every opcode with its operand kind. */
START_TEST(docs_cover_every_opcode)
{
    const char *self = __FILE__;
    const char *tail = strstr(self, "tests/unit/test_asm.c");
    char path[4096];
    snprintf(path, sizeof path, "%.*sdocs/assembly.md", tail ? (int)(tail - self) : 0, self);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = 0;
    static const char *const kinds[] = {"none", "CONST", "LOCAL", "NAME", "JUMP", "COUNT", "IMM"};
    for (unsigned op = 0; op < OP__COUNT; op++) {
        char want[128];
        snprintf(want, sizeof want, "\n### %s\n", op_name(op));
        const char *e = strstr(doc, want);
        ck_assert_msg(e != NULL, "docs/assembly.md has no entry for %s", op_name(op));
        const char *next = strstr(e + 1, "\n### ");
        snprintf(want, sizeof want, "Operand: %s", kinds[op_kind_of(op)]);
        const char *k = strstr(e, want);
        ck_assert_msg(k && (!next || k < next), "%s: entry must say \"%s\"", op_name(op), want);
    }
}
END_TEST

Suite *suite_asm(void)
{
    Suite *s = suite_create("asm");
    TCase *tc = tcase_create("asm");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, empty_module);
    tcase_add_test(tc, body_halt_and_entry_depth);
    tcase_add_test(tc, functions);
    tcase_add_test(tc, function_errors);
    tcase_add_test(tc, literal_scalars);
    tcase_add_test(tc, literal_floats);
    tcase_add_test(tc, literal_strings);
    tcase_add_test(tc, literal_tuples);
    tcase_add_test(tc, literal_errors);
    tcase_add_test(tc, operands);
    tcase_add_test(tc, dedup);
    tcase_add_test(tc, labels);
    tcase_add_test(tc, label_errors);
    tcase_add_test(tc, stack_depth);
    tcase_add_test(tc, try_regions);
    tcase_add_test(tc, lines_and_source);
    tcase_add_test(tc, garbage);
    tcase_add_test(tc, dis_round_trip);
    tcase_add_test(tc, dis_listing);
    tcase_add_test(tc, docs_cover_every_opcode);
    suite_add_tcase(s, tc);
    return s;
}
