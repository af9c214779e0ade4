/* SPDX-License-Identifier: MIT */
/* Unit tests of the bytecode file format (vm/toolchain/bcfile.c) and the verifier (vm/toolchain/verify.c): every
 * rejection path with its message, header and body corruption (truncation at every length,
 * huge counts, flipped bytes with the checksum recomputed), and a write -> read round trip.
 * Code objects are built by hand; .gbc images are built by the independent writer below,
 * which also pins the layout docs/bytecode.md describes. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vm/api/run.h"
#include "vm/api/gilvm.h"
#include "vm/toolchain/module.h"

#define CAP 8                           /* table capacity of hand-built code objects */
#define I(op, a) INSTR(OP_##op, (a))

static void setup(void) { ck_assert_int_eq(gilvm_runtime_init(NULL), 0); }
static void teardown(void) { gilvm_runtime_finalize(0); }

static vm_str *str(const char *s) { return AS_STR(vm_str_c(vm_main_thread(), s)); }

/* A code object on the heap: consts {None, 5}, names {"x"}, CAP local names, no exception
 * entries; tables have room for CAP entries so tests can change the counts. */
static vm_code *mk(uint32_t flags, uint32_t nlocals, uint32_t maxstack, uint32_t n,
                   const instr *code)
{
    vm_code *c = vm_code_new(vm_main_thread());
    c->flags = flags;
    c->name = str(flags & CO_MODULE ? "<module>" : "f");
    c->file = str("t.gasm");
    c->nlocals = nlocals;
    c->maxstack = maxstack;
    c->ncode = n;
    c->code = calloc(n ? n : 1, sizeof(instr));
    memcpy(c->code, code, n * sizeof(instr));
    c->lines = calloc(n ? n : 1, sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++)
        c->lines[i] = i + 1;
    c->consts = calloc(CAP, sizeof(value));
    c->consts[0] = V_NONE;
    c->consts[1] = V_INT(5);
    c->nconsts = 2;
    c->names = calloc(CAP, sizeof(vm_str *));
    c->names[0] = str("x");
    c->nnames = 1;
    c->localnames = calloc(CAP, sizeof(vm_str *));
    for (int i = 0; i < CAP; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "l%d", i);
        c->localnames[i] = str(nm);
    }
    c->exc = calloc(CAP, sizeof(vm_exc_entry));
    return c;
}

#define CODE(...) (uint32_t)(sizeof((instr[]){__VA_ARGS__}) / sizeof(instr)), (instr[]){__VA_ARGS__}
#define FN(nlocals, maxstack, ...) mk(0, (nlocals), (maxstack), CODE(__VA_ARGS__))
#define MOD(maxstack, ...) mk(CO_MODULE, 0, (maxstack), CODE(__VA_ARGS__))

static void add_exc(vm_code *c, uint32_t start, uint32_t end, uint32_t target, uint32_t depth)
{
    ck_assert_uint_lt(c->nexc, CAP);
    c->exc[c->nexc++] = (vm_exc_entry){start, end, target, depth};
}

static void accept(const vm_code *c)
{
    char err[512] = "";
    int rc = vm_verify_code(c, err, sizeof err);
    ck_assert_msg(rc == 0, "rejected: %s", err);
}

static void reject_at(const vm_code *c, const char *want, int line)
{
    char err[512] = "";
    int rc = vm_verify_code(c, err, sizeof err);
    ck_assert_msg(rc == -1, "line %d: accepted, wanted \"%s\"", line, want);
    ck_assert_msg(strstr(err, want), "line %d: message \"%s\" lacks \"%s\"", line, err, want);
    ck_assert_msg(!strchr(err, '\n'), "line %d: message is not one line", line);
}
#define reject(c, want) reject_at((c), (want), __LINE__)

/* ---- verifier: structure ---- */

START_TEST(test_verify_structure)
{
    vm_code *c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0));
    accept(c);
    c->flags = 6;
    reject(c, "function f: unknown code flags 0x6");
    c->flags = 0;
    c->name = NULL;
    reject(c, "function ?: code object has no name");
    c->name = str("f");

    c->ncode = 0;
    reject(c, "function f: empty code");
    c->ncode = (1u << 24) + 1;
    reject(c, "instructions exceed the limit");
    c->ncode = 3;

    c->maxstack = 1u << 20;
    c->nlocals = 1;
    reject(c, "frame of 1 locals and 1048576 stack slots exceeds the limit");
    c->maxstack = UINT32_MAX;
    c->nlocals = 0;
    reject(c, "exceeds the limit");
    c->maxstack = 0x80000000u;
    c->nlocals = 0x80000000u;           /* the sum wraps to 0 in 32 bits */
    reject(c, "exceeds the limit");
    c->maxstack = 1;
    c->nlocals = 2;
    c->nparams = 3;
    reject(c, "function f: 3 parameters but only 2 locals");
    c->nparams = 2;
    accept(c);

    c->entry_depth = 1;
    reject(c, "function has entry stack depth 1 (must be 0)");
    c->entry_depth = 0;

    free(c->code);
    c->code = NULL;
    reject(c, "missing code or line table");
    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0));
    free(c->lines);
    c->lines = NULL;
    reject(c, "missing code or line table");

    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0));
    free(c->consts);
    c->consts = NULL;
    reject(c, "missing constant, name, local-name or exception table");
    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0));
    c->nexc = 1;
    free(c->exc);
    c->exc = NULL;
    reject(c, "missing constant, name, local-name or exception table");

    c = FN(2, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0));
    c->names[0] = NULL;
    reject(c, "name 0 missing");
    c = FN(2, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0));
    c->localnames[1] = NULL;
    reject(c, "local name 1 missing");
}
END_TEST

START_TEST(test_verify_module_rules)
{
    vm_code *c = MOD(0, I(HALT, 0));
    accept(c);
    c->nlocals = 1;
    reject(c, "function <module>: module body has 0 parameters and 1 locals (must be 0)");
    c->nparams = 1;
    reject(c, "module body has 1 parameters and 1 locals");
    c->nparams = c->nlocals = 0;

    /* A module body may start with values on the stack (the REPL's), within maxstack. */
    c = MOD(2, I(POP, 0), I(POP, 0), I(HALT, 0));
    reject(c, "offset 0: stack underflow (POP pops 1, depth 0)");
    c->entry_depth = 2;
    accept(c);
    c->entry_depth = 3;
    reject(c, "entry stack depth 3 exceeds declared maximum 2");

    /* HALT only in module bodies; functions end in RETURN or RAISE. */
    c = FN(0, 0, I(RESUME, 0), I(HALT, 0));
    reject(c, "function f, offset 1: HALT outside a module body");
    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0), I(HALT, 0));   /* unreachable */
    reject(c, "offset 3: HALT outside a module body");                       /* still counts */
}
END_TEST

/* ---- verifier: operands ---- */

START_TEST(test_verify_operands)
{
    vm_code *c = FN(1, 1, I(RESUME, 0), INSTR(OP__COUNT, 0), I(RETURN, 0));
    reject(c, "function f, offset 1: invalid opcode");
    c = FN(1, 1, I(RESUME, 0), I(LOAD_NONE, 0), INSTR(255, 0));
    reject(c, "offset 2: invalid opcode 255");

    c = FN(1, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(POP, 1), I(LOAD_NONE, 0), I(RETURN, 0));
    reject(c, "offset 2: POP takes no operand (has 1)");
    c = FN(1, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0xffffff));
    reject(c, "RETURN takes no operand (has 16777215)");
    c = FN(1, 1, I(RESUME, 1), I(LOAD_NONE, 0), I(RETURN, 0));
    reject(c, "offset 0: RESUME takes no operand (has 1)");

    c = FN(1, 1, I(RESUME, 0), I(LOAD_CONST, 1), I(RETURN, 0));
    accept(c);
    c->code[1] = I(LOAD_CONST, 2);
    reject(c, "offset 1: LOAD_CONST: constant index 2 out of range (2 constants)");
    c->nconsts = 0;
    c->code[1] = I(LOAD_CONST, 0);
    reject(c, "constant index 0 out of range (0 constants)");

    c = FN(1, 1, I(RESUME, 0), I(LOAD_LOCAL, 0), I(RETURN, 0));
    accept(c);
    c->code[1] = I(LOAD_LOCAL, 1);
    reject(c, "LOAD_LOCAL: local index 1 out of range (1 locals)");
    c = FN(1, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(STORE_LOCAL, 1), I(LOAD_NONE, 0),
           I(RETURN, 0));
    reject(c, "offset 2: STORE_LOCAL: local index 1 out of range");

    c = FN(0, 1, I(RESUME, 0), I(LOAD_GLOBAL, 0), I(RETURN, 0));
    accept(c);
    c->code[1] = I(LOAD_GLOBAL, 1);
    reject(c, "LOAD_GLOBAL: name index 1 out of range (1 names)");
    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(STORE_GLOBAL, 7), I(LOAD_NONE, 0),
           I(RETURN, 0));
    reject(c, "STORE_GLOBAL: name index 7 out of range");

    /* Unreachable code may exist, but its operands are checked all the same. */
    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0), I(POP, 0), I(POP, 0),
           I(RETURN, 0));
    accept(c);
    c->code[3] = I(LOAD_CONST, 9);
    reject(c, "offset 3: LOAD_CONST: constant index 9 out of range");
}
END_TEST

START_TEST(test_verify_jumps)
{
    vm_code *c = FN(0, 1, I(RESUME, 0), I(JUMP_FORWARD, 6), I(LOAD_NONE, 0), I(RETURN, 0));
    reject(c, "offset 1: JUMP_FORWARD: jump target 6 outside the code (4 instructions)");
    c->code[1] = I(JUMP_FORWARD, 4);
    reject(c, "jump target 4 outside the code");
    c->code[1] = I(JUMP_FORWARD, 1);
    reject(c, "offset 1: JUMP_FORWARD: target 1 is not forward");
    c->code[1] = I(JUMP_FORWARD, 0);
    reject(c, "offset 1: JUMP_FORWARD: target 0 is not forward");
    c->code[1] = I(JUMP_FORWARD, 2);
    accept(c);

    c = FN(0, 1, I(RESUME, 0), I(JUMP_BACKWARD, 2), I(LOAD_NONE, 0), I(RETURN, 0));
    reject(c, "offset 1: JUMP_BACKWARD: target 2 is not backward");
    c = FN(0, 1, I(RESUME, 0), I(JUMP_BACKWARD, 1));  /* a loop onto itself polls every time */
    accept(c);                                        /* round */
    c->code[1] = I(JUMP_BACKWARD, 0);                 /* back to the entry poll */
    accept(c);

    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0), I(LOAD_NONE, 0),
           I(POP_JUMP_IF_FALSE, 2), I(LOAD_NONE, 0), I(RETURN, 0));
    reject(c, "offset 4: POP_JUMP_IF_FALSE: target 2 is not forward");
    c->code[4] = I(POP_JUMP_IF_TRUE, 4);
    reject(c, "offset 4: POP_JUMP_IF_TRUE: target 4 is not forward");
    c->code[4] = I(POP_JUMP_IF_TRUE, 5);
    accept(c);

    /* for x in it: pass */
    c = FN(1, 2, I(RESUME, 0), I(LOAD_LOCAL, 0), I(GET_ITER, 0), I(FOR_ITER, 6), I(POP, 0),
           I(JUMP_BACKWARD, 3), I(LOAD_NONE, 0), I(RETURN, 0));
    accept(c);
    c->code[3] = I(FOR_ITER, 2);
    reject(c, "offset 3: FOR_ITER: target 2 is not forward");

    /* Execution cannot run off the end. */
    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0));
    reject(c, "offset 1: LOAD_NONE at the end of the code falls through past the end");
    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0), I(LOAD_NONE, 0));
    reject(c, "offset 3: LOAD_NONE at the end");
    c = FN(0, 0, I(RESUME, 0));
    reject(c, "offset 0: RESUME at the end of the code falls through past the end");
    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RAISE, 0));
    accept(c);
}
END_TEST

/* ---- verifier: stack depths ---- */

START_TEST(test_verify_stack)
{
    vm_code *c = FN(0, 1, I(RESUME, 0), I(POP, 0), I(LOAD_NONE, 0), I(RETURN, 0));
    reject(c, "function f, offset 1: stack underflow (POP pops 1, depth 0)");
    c = FN(0, 3, I(RESUME, 0), I(LOAD_NONE, 0), I(LOAD_NONE, 0), I(CALL, 3), I(RETURN, 0));
    reject(c, "offset 3: stack underflow (CALL pops 4, depth 2)");
    c->code[3] = I(CALL, 1);
    accept(c);
    c = FN(0, 3, I(RESUME, 0), I(LOAD_NONE, 0), I(BUILD_DICT, 1), I(RETURN, 0));
    reject(c, "offset 2: stack underflow (BUILD_DICT pops 2, depth 1)");
    c = FN(0, 1, I(RESUME, 0), I(RETURN, 0));
    reject(c, "offset 1: stack underflow (RETURN pops 1, depth 0)");

    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(LOAD_NONE, 0), I(BUILD_LIST, 2),
           I(RETURN, 0));
    reject(c, "offset 2: stack depth 2 exceeds declared maximum 1");
    c->maxstack = 2;
    accept(c);
    c = FN(0, 2, I(RESUME, 0), I(LOAD_NONE, 0), I(DUP, 0), I(OVER, 0), I(RETURN, 0));
    reject(c, "offset 3: stack depth 3 exceeds declared maximum 2");

    /* Two paths reach offset 5 with depths 1 and 2. */
    c = FN(0, 3, I(RESUME, 0), I(LOAD_NONE, 0), I(LOAD_NONE, 0), I(POP_JUMP_IF_FALSE, 5),
           I(LOAD_NONE, 0), I(RETURN, 0));
    reject(c, "offset 5: stack depth mismatch (");
    /* A loop that grows the stack each time round. */
    c = FN(0, 8, I(RESUME, 0), I(LOAD_NONE, 0), I(JUMP_BACKWARD, 1));
    reject(c, "offset 1: stack depth mismatch (0 vs 1, from offset 2)");
    c->code[2] = I(JUMP_BACKWARD, 0);   /* the same through the entry poll */
    reject(c, "offset 0: stack depth mismatch (0 vs 1, from offset 2)");
    /* FOR_ITER's jump edge pops the iterator: the exit sees one value less. */
    c = FN(1, 2, I(RESUME, 0), I(LOAD_LOCAL, 0), I(GET_ITER, 0), I(FOR_ITER, 6), I(POP, 0),
           I(JUMP_BACKWARD, 3), I(RETURN, 0));
    reject(c, "offset 6: stack underflow (RETURN pops 1, depth 0)");
}
END_TEST

/* ---- verifier: exception table ---- */

START_TEST(test_verify_exc_table)
{
    /* try: return a + None  except: return exc (the entry poll is outside the try) */
    vm_code *c = FN(1, 3, I(RESUME, 0), I(LOAD_LOCAL, 0), I(LOAD_NONE, 0), I(ADD, 0),
                    I(RETURN, 0), I(RETURN, 0));
    add_exc(c, 1, 5, 5, 0);
    accept(c);
    c->exc[0] = (vm_exc_entry){0, 5, 5, 0};   /* a range may cover the entry poll */
    accept(c);

    c->exc[0] = (vm_exc_entry){3, 3, 5, 0};
    reject(c, "function f, exception entry 0: range [3, 3) invalid (6 instructions)");
    c->exc[0] = (vm_exc_entry){4, 2, 5, 0};
    reject(c, "range [4, 2) invalid");
    c->exc[0] = (vm_exc_entry){1, 7, 5, 0};
    reject(c, "range [1, 7) invalid");
    c->exc[0] = (vm_exc_entry){1, 5, 6, 0};
    reject(c, "exception entry 0: handler target 6 outside the code (6 instructions)");
    c->exc[0] = (vm_exc_entry){1, 5, 5, 3};
    reject(c, "exception entry 0: handler depth 4 exceeds declared maximum 3");
    c->exc[0] = (vm_exc_entry){1, 5, 5, UINT32_MAX};
    reject(c, "handler depth 4294967296 exceeds declared maximum 3");
    c->exc[0] = (vm_exc_entry){1, 5, 5, 0};

    /* The handler is a root with depth entry.depth + 1, consistent with the flow. */
    add_exc(c, 2, 3, 5, 1);
    reject(c, "offset 5: stack depth mismatch (1 vs 2) at the handler of exception entry 1");
    c->nexc = 1;
    c->exc[0] = (vm_exc_entry){1, 5, 4, 1};   /* offset 4 is reached with depth 1 by flow */
    reject(c, "stack depth mismatch (");

    /* Unwinding to a depth above the stack would expose slots this frame never wrote. */
    c->exc[0] = (vm_exc_entry){1, 3, 5, 1};   /* offset 1 has depth 0 */
    reject(c, "offset 1: stack depth 0 is below the depth 1 that exception entry 0 unwinds to");
    c->exc[0] = (vm_exc_entry){0, 3, 5, 1};   /* so has the entry poll at offset 0 */
    reject(c, "offset 0: stack depth 0 is below the depth 1 that exception entry 0 unwinds to");
    c->exc[0] = (vm_exc_entry){2, 4, 5, 1};   /* depths 1, 2 */
    accept(c);
    c->exc[0] = (vm_exc_entry){2, 5, 5, 2};
    reject(c, "offset 2: stack depth 1 is below the depth 2");

    /* Unreachable instructions in a range never raise. */
    c = FN(0, 2, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0), I(POP, 0), I(RETURN, 0),
           I(RETURN, 0));
    add_exc(c, 2, 5, 5, 1);
    accept(c);

    /* CALL pops callee and arguments before the callee runs: the floor is below them. */
    c = FN(0, 3, I(RESUME, 0), I(LOAD_GLOBAL, 0), I(LOAD_NONE, 0), I(CALL, 1), I(RETURN, 0),
           I(RETURN, 0));
    add_exc(c, 3, 4, 5, 1);
    reject(c, "offset 3: CALL leaves stack depth 0, below the depth 1 that exception entry 0 "
              "unwinds to");
    c->exc[0].depth = 0;
    accept(c);
}
END_TEST

/* The range check is a segment-tree query; compare it with the obvious answer on a long
 * code with alternating depths (the entry poll at 0 and odd offsets 0, even offsets 1). */
START_TEST(test_verify_exc_ranges_long)
{
    enum { PAIRS = 500, N = 2 * PAIRS + 4 };
    instr code[N];
    code[0] = I(RESUME, 0);
    for (int i = 0; i < PAIRS; i++) {
        code[2 * i + 1] = I(LOAD_NONE, 0);
        code[2 * i + 2] = I(POP, 0);
    }
    code[2 * PAIRS + 1] = I(LOAD_NONE, 0);
    code[2 * PAIRS + 2] = I(RETURN, 0);
    code[2 * PAIRS + 3] = I(RETURN, 0);        /* the handler, depth 2 */
    vm_code *c = mk(0, 0, 2, N, code);
    c->nexc = 1;
    for (uint32_t s = 0; s < N - 1; s++) {
        for (uint32_t len = 1; len <= 2; len++) {
            c->exc[0] = (vm_exc_entry){s, s + len, N - 1, 1};
            char err[512];
            /* ok iff every offset in the range is even and not 0, or the handler (depth 2) */
            int want = s % 2 == 0 && s > 0 && (len == 1 || s + 1 == N - 1) ? 0 : -1;
            ck_assert_msg(vm_verify_code(c, err, sizeof err) == want, "range [%u, %u): %s", s,
                          s + len, want ? "accepted" : err);
        }
    }
}
END_TEST

/* Every call polls: a function's first instruction is RESUME.  A module body is entered
 * once, not called, and needs none. */
START_TEST(test_verify_resume)
{
    const char *want = "function f, offset 0: function does not start with RESUME (every call "
                       "must poll)";
    vm_code *c = FN(0, 1, I(LOAD_NONE, 0), I(RETURN, 0));
    reject(c, want);
    c = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0));
    accept(c);
    c->code[0] = I(NOP, 0);
    reject(c, want);

    /* A RESUME later in the code does not make up for it. */
    c = FN(0, 1, I(NOP, 0), I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0));
    reject(c, want);
    /* Nor does a loop that polls at its backward jump: the entry itself must poll. */
    c = FN(0, 1, I(JUMP_BACKWARD, 0));
    reject(c, want);
    /* With parameters and an exception entry, all else valid. */
    c = FN(2, 2, I(LOAD_LOCAL, 0), I(LOAD_LOCAL, 1), I(ADD, 0), I(RETURN, 0), I(RETURN, 0));
    c->nparams = 2;
    add_exc(c, 0, 4, 4, 0);
    reject(c, want);

    /* Module bodies: no RESUME needed (one is allowed). */
    c = MOD(0, I(HALT, 0));
    accept(c);
    c = MOD(1, I(LOAD_NONE, 0), I(POP, 0), I(HALT, 0));
    accept(c);
    c = MOD(0, I(RESUME, 0), I(HALT, 0));
    accept(c);
}
END_TEST

START_TEST(test_verify_long_name_one_line)
{
    vm_code *c = FN(0, 1, I(RESUME, 0), I(RETURN, 0));
    char name[300];
    memset(name, 'a', sizeof name);
    name[10] = '\n';
    c->name = AS_STR(vm_str_new(vm_main_thread(), name, sizeof name));
    char err[512];
    ck_assert_int_eq(vm_verify_code(c, err, sizeof err), -1);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_ptr_nonnull(strstr(err, "aaaa?aaa"));
    ck_assert_ptr_nonnull(strstr(err, "...,"));
    ck_assert_ptr_nonnull(strstr(err, "stack underflow"));
}
END_TEST

/* ---- an independent .gbc writer (the layout of docs/bytecode.md) ---- */

typedef struct {
    uint8_t p[4096];
    size_t len;
} bb;

static void bb_put(bb *b, const void *s, size_t n)
{
    ck_assert_uint_le(b->len + n, sizeof b->p);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}
static void bb_u8(bb *b, uint8_t v) { bb_put(b, &v, 1); }
static void bb_u32(bb *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_str(bb *b, const char *s)
{
    bb_u32(b, (uint32_t)strlen(s));
    bb_put(b, s, strlen(s));
}

/* Header + body: magic, version 1.0, byte-order mark, sizes, body length, CRC-32. */
static uint8_t *seal(const uint8_t *body, size_t n, size_t *len)
{
    uint8_t *img = malloc(28 + n + 1);
    uint16_t major = 1, minor = 0;
    uint32_t bom = 0x01020304, blen = (uint32_t)n, crc = (uint32_t)crc32(0, body, (uInt)n);
    memcpy(img, "GILVMBC", 8);
    memcpy(img + 8, &major, 2);
    memcpy(img + 10, &minor, 2);
    memcpy(img + 12, &bom, 4);
    img[16] = 8;
    img[17] = 8;
    img[18] = 4;
    img[19] = 0;
    memcpy(img + 20, &blen, 4);
    memcpy(img + 24, &crc, 4);
    memcpy(img + 28, body, n);
    *len = 28 + n;
    return img;
}

/* Recomputes the header's body length and CRC after a test changed the body. */
static void reseal(uint8_t *img, size_t len)
{
    uint32_t blen = (uint32_t)(len - 28), crc = (uint32_t)crc32(0, img + 28, (uInt)(len - 28));
    memcpy(img + 20, &blen, 4);
    memcpy(img + 24, &crc, 4);
}

static void rec_head(bb *b, uint32_t flags, const char *name, uint32_t nparams,
                     uint32_t nlocals, uint32_t entry_depth, uint32_t maxstack)
{
    bb_u32(b, flags);
    bb_str(b, name);
    bb_u32(b, nparams);
    bb_u32(b, nlocals);
    bb_u32(b, entry_depth);
    bb_u32(b, maxstack);
    for (uint32_t i = 0; i < nlocals; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "l%u", i);
        bb_str(b, nm);
    }
}

static void rec_code(bb *b, uint32_t n, const instr *code)
{
    bb_u32(b, n);
    bb_put(b, code, n * sizeof(instr));
    for (uint32_t i = 0; i < n; i++)
        bb_u32(b, i + 1);
}

static void rec_no_tables(bb *b)
{
    bb_u32(b, 0);                       /* constants */
    bb_u32(b, 0);                       /* names */
    bb_u32(b, 0);                       /* exception entries */
}

static void rec_halt_module(bb *b)
{
    rec_head(b, CO_MODULE, "<module>", 0, 0, 0, 0);
    rec_code(b, CODE(I(HALT, 0)));
    rec_no_tables(b);
}

static void mod_start(bb *b, uint32_t ncodes)
{
    bb_str(b, "t.gasm");
    bb_u32(b, ncodes);
}

/* A small module with every kind of record: a body calling g(7, "s") under a try, and
 * g(a, b) with a local, constants of every kind, names and an exception entry. */
static void small_module(bb *b)
{
    mod_start(b, 2);
    rec_head(b, CO_MODULE, "<module>", 0, 0, 0, 3);
    rec_code(b, CODE(I(LOAD_GLOBAL, 0), I(LOAD_CONST, 0), I(LOAD_CONST, 1), I(CALL, 2),
                     I(POP, 0), I(HALT, 0), I(POP, 0), I(HALT, 0)));
    bb_u32(b, 2);
    bb_u8(b, 3);                        /* int */
    int64_t seven = 7;
    bb_put(b, &seven, 8);
    bb_u8(b, 5);                        /* str */
    bb_str(b, "s");
    bb_u32(b, 1);
    bb_str(b, "g");
    bb_u32(b, 1);
    bb_u32(b, 0); bb_u32(b, 5); bb_u32(b, 6); bb_u32(b, 0);

    rec_head(b, 0, "g", 2, 3, 0, 2);
    rec_code(b, CODE(I(RESUME, 0), I(LOAD_LOCAL, 0), I(LOAD_CONST, 4), I(ADD, 0),
                     I(STORE_LOCAL, 2), I(LOAD_CONST, 3), I(RETURN, 0)));
    bb_u32(b, 5);
    bb_u8(b, 0);                        /* None */
    bb_u8(b, 1);                        /* False */
    bb_u8(b, 2);                        /* True */
    bb_u8(b, 7);                        /* tuple (1.5, b"\0\xff") */
    bb_u32(b, 2);
    bb_u8(b, 4);
    double x = 1.5;
    bb_put(b, &x, 8);
    bb_u8(b, 6);
    bb_u32(b, 2);
    bb_put(b, "\0\xff", 2);
    bb_u8(b, 3);
    int64_t one = 1;
    bb_put(b, &one, 8);
    bb_u32(b, 1);
    bb_str(b, "unused");
    bb_u32(b, 0);
}

static int read_img(const uint8_t *img, size_t len, vm_module *m, char *err, size_t errlen)
{
    err[0] = 0;
    return vm_bc_read(vm_main_thread(), "t.gbc", img, len, m, err, errlen);
}

static void read_ok(const uint8_t *img, size_t len, vm_module *m)
{
    char err[512];
    int rc = read_img(img, len, m, err, sizeof err);
    ck_assert_msg(rc == 0, "rejected: %s", err);
}

static void read_fails_at(const uint8_t *img, size_t len, const char *want, int line)
{
    char err[512];
    vm_module m = {1, (vm_code **)1};
    int rc = read_img(img, len, &m, err, sizeof err);
    ck_assert_msg(rc == -1, "line %d: accepted, wanted \"%s\"", line, want);
    ck_assert_msg(m.ncodes == 0 && m.codes == NULL, "line %d: module not cleared", line);
    ck_assert_msg(strncmp(err, "t.gbc: ", 7) == 0, "line %d: \"%s\" does not name the file",
                  line, err);
    ck_assert_msg(strstr(err, want), "line %d: message \"%s\" lacks \"%s\"", line, err, want);
    ck_assert_msg(!strchr(err, '\n'), "line %d: message is not one line", line);
}
#define read_fails(img, len, want) read_fails_at((img), (len), (want), __LINE__)

static uint8_t *small_image(size_t *len)
{
    bb b = {.len = 0};
    small_module(&b);
    return seal(b.p, b.len, len);
}

/* ---- header ---- */

START_TEST(test_header_ok)
{
    size_t len;
    uint8_t *img = small_image(&len);
    vm_module m;
    read_ok(img, len, &m);
    ck_assert_uint_eq(m.ncodes, 2);
    ck_assert_str_eq(m.codes[0]->name->data, "<module>");
    ck_assert_str_eq(m.codes[1]->name->data, "g");
    ck_assert_str_eq(m.codes[1]->file->data, "t.gasm");
    vm_module_free(&m);
    free(img);
}
END_TEST

START_TEST(test_header_errors)
{
    size_t len;
    uint8_t *img = small_image(&len);
    uint8_t *bad = malloc(len + 1);
    uint16_t u16;
    uint32_t u32;

    read_fails(img, 0, "not a gilvm bytecode file (empty)");
    memcpy(bad, img, len);
    bad[0] = 'X';
    read_fails(bad, len, "not a gilvm bytecode file (bad magic)");
    read_fails(bad, 5, "bad magic");
    memcpy(bad, img, len);
    bad[7] = '!';
    read_fails(bad, len, "bad magic");

    memcpy(bad, img, len);
    u16 = 2;
    memcpy(bad + 8, &u16, 2);
    read_fails(bad, len, "t.gbc: bytecode format version 2.0, this gilvm reads 1.x");
    u16 = 0;
    memcpy(bad + 8, &u16, 2);
    u16 = 3;
    memcpy(bad + 10, &u16, 2);
    read_fails(bad, len, "bytecode format version 0.3, this gilvm reads 1.x");
    u16 = 1;
    memcpy(bad + 8, &u16, 2);
    read_fails(bad, len, "bytecode format version 1.3 is newer than this gilvm's 1.0");

    memcpy(bad, img, len);
    u32 = 0x04030201;
    memcpy(bad + 12, &u32, 4);
    read_fails(bad, len, "t.gbc: written on a machine of other byte order");
    /* A file from the other byte order also has its version bytes swapped. */
    u16 = 0x0100;
    memcpy(bad + 8, &u16, 2);
    read_fails(bad, len, "other byte order");
    memcpy(bad, img, len);
    u32 = 0x01020305;
    memcpy(bad + 12, &u32, 4);
    read_fails(bad, len, "corrupt header: bad byte-order mark 0x01020305");

    for (int k = 16; k <= 18; k++) {
        memcpy(bad, img, len);
        bad[k] = 16;
        read_fails(bad, len, "int64/double/instruction sizes");
        read_fails(bad, len, "this gilvm uses 8/8/4");
    }
    memcpy(bad, img, len);
    bad[19] = 1;
    read_fails(bad, len, "corrupt header: reserved byte is 1");

    memcpy(bad, img, len);
    bad[len - 1] ^= 0x40;
    read_fails(bad, len, "checksum mismatch");
    memcpy(bad, img, len);
    bad[25] ^= 1;
    read_fails(bad, len, "checksum mismatch");

    memcpy(bad, img, len);
    bad[len] = 0;
    read_fails(bad, len + 1, "1 bytes of trailing garbage after the body");
    read_fails(img, len - 3, "truncated: body is");
    read_fails(img, 20, "truncated header (20 of 28 bytes)");
    read_fails(img, 3, "truncated header (3 of 28 bytes)");

    free(bad);
    free(img);
}
END_TEST

/* Every prefix of a valid file is rejected cleanly (never a crash, never accepted). */
START_TEST(test_truncation_every_length)
{
    size_t len;
    uint8_t *img = small_image(&len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1);  /* exact size: ASan sees any overread */
        memcpy(cut, img, n);
        char err[512];
        vm_module m;
        ck_assert_msg(read_img(n ? cut : NULL, n, &m, err, sizeof err) == -1,
                      "prefix %zu accepted", n);
        ck_assert_msg(strncmp(err, "t.gbc: ", 7) == 0, "prefix %zu: \"%s\"", n, err);
        free(cut);
    }
    free(img);
}
END_TEST

/* The same with the header made consistent with each shorter body: the body parser must
 * notice the truncation itself. */
START_TEST(test_truncation_resealed)
{
    bb b = {.len = 0};
    small_module(&b);
    for (size_t n = 0; n < b.len; n++) {
        size_t len;
        uint8_t *img = seal(b.p, n, &len);
        uint8_t *exact = malloc(len);
        memcpy(exact, img, len);
        char err[512];
        vm_module m;
        ck_assert_msg(read_img(exact, len, &m, err, sizeof err) == -1,
                      "body prefix %zu accepted", n);
        ck_assert_msg(strstr(err, "truncated body at byte") || strstr(err, "exceeds the"),
                      "body prefix %zu: \"%s\"", n, err);
        free(exact);
        free(img);
    }
}
END_TEST

/* Every byte of the body set to a few values, checksum recomputed: the reader and verifier
 * either accept a (verified) module or reject it with a message; never crash. */
START_TEST(test_body_flips_resealed)
{
    size_t len;
    uint8_t *img = small_image(&len);
    static const uint8_t vals[] = {0x00, 0xff, 0x01, 0x80};
    int accepted = 0, rejected = 0;
    for (size_t pos = 28; pos < len; pos++) {
        for (size_t k = 0; k < sizeof vals + 1; k++) {
            uint8_t *bad = malloc(len);
            memcpy(bad, img, len);
            bad[pos] = k < sizeof vals ? vals[k] : (uint8_t)(img[pos] ^ 0x01);
            if (bad[pos] == img[pos]) {
                free(bad);
                continue;
            }
            reseal(bad, len);
            char err[512];
            vm_module m;
            if (read_img(bad, len, &m, err, sizeof err) == 0) {
                for (uint32_t i = 0; i < m.ncodes; i++)
                    ck_assert_int_eq(vm_verify_code(m.codes[i], err, sizeof err), 0);
                vm_module_free(&m);
                accepted++;
            } else {
                ck_assert_msg(strncmp(err, "t.gbc: ", 7) == 0 && !strchr(err, '\n'),
                              "byte %zu: \"%s\"", pos, err);
                rejected++;
            }
            free(bad);
        }
    }
    ck_assert_int_gt(rejected, 0);
    ck_assert_int_gt(accepted, 0);      /* e.g. a changed line number or constant value */
    free(img);
}
END_TEST

/* ---- body ---- */

START_TEST(test_body_huge_counts)
{
    bb b;
    size_t len;
    uint8_t *img;
#define HUGE_CASE(want, ...) \
    do { \
        b.len = 0; \
        __VA_ARGS__; \
        img = seal(b.p, b.len, &len); \
        read_fails(img, len, want); \
        free(img); \
    } while (0)

    HUGE_CASE("source file name length 4294967295 exceeds", bb_u32(&b, UINT32_MAX));
    HUGE_CASE("code object count 4294967295 exceeds", mod_start(&b, UINT32_MAX));
    HUGE_CASE("code object count 2 exceeds", mod_start(&b, 2); rec_halt_module(&b));
    HUGE_CASE("function name length 4000000000 exceeds",
              mod_start(&b, 1); bb_u32(&b, CO_MODULE); bb_u32(&b, 4000000000u);
              bb_put(&b, (uint8_t[64]){0}, 64));
    HUGE_CASE("local count 4294967295 exceeds",
              mod_start(&b, 1); bb_u32(&b, 0); bb_str(&b, "f"); bb_u32(&b, 0);
              bb_u32(&b, UINT32_MAX); bb_u32(&b, 0); bb_u32(&b, 0);
              bb_put(&b, (uint8_t[64]){0}, 64));
    HUGE_CASE("local name length 100 exceeds",
              mod_start(&b, 1); bb_u32(&b, 0); bb_str(&b, "f"); bb_u32(&b, 0); bb_u32(&b, 1);
              bb_u32(&b, 0); bb_u32(&b, 0); bb_u32(&b, 100); bb_put(&b, (uint8_t[60]){0}, 60));
    HUGE_CASE("instruction count 4294967295 exceeds",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              bb_u32(&b, UINT32_MAX); bb_put(&b, (uint8_t[64]){0}, 64));
    /* 8 bytes per instruction (code + line): 8 instructions do not fit in 60 bytes. */
    HUGE_CASE("instruction count 8 exceeds the 60 bytes left",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              bb_u32(&b, 8); bb_put(&b, (uint8_t[60]){0}, 60));
    HUGE_CASE("constant count 4294967295 exceeds",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              rec_code(&b, CODE(I(HALT, 0))); bb_u32(&b, UINT32_MAX); bb_u32(&b, 0));
    HUGE_CASE("str constant length 4294967295 exceeds",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              rec_code(&b, CODE(I(HALT, 0))); bb_u32(&b, 1); bb_u8(&b, 5);
              bb_u32(&b, UINT32_MAX); bb_u32(&b, 0));
    HUGE_CASE("bytes constant length 4294967295 exceeds",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              rec_code(&b, CODE(I(HALT, 0))); bb_u32(&b, 1); bb_u8(&b, 6);
              bb_u32(&b, UINT32_MAX); bb_u32(&b, 0));
    HUGE_CASE("tuple length 4294967295 exceeds",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              rec_code(&b, CODE(I(HALT, 0))); bb_u32(&b, 1); bb_u8(&b, 7);
              bb_u32(&b, UINT32_MAX); bb_u32(&b, 0));
    HUGE_CASE("name count 4294967295 exceeds",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              rec_code(&b, CODE(I(HALT, 0))); bb_u32(&b, 0); bb_u32(&b, UINT32_MAX);
              bb_u32(&b, 0));
    HUGE_CASE("exception entry count 4294967295 exceeds",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              rec_code(&b, CODE(I(HALT, 0))); bb_u32(&b, 0); bb_u32(&b, 0);
              bb_u32(&b, UINT32_MAX); bb_put(&b, (uint8_t[16]){0}, 16));
    /* 16 bytes per entry: 2 entries do not fit in 31 bytes. */
    HUGE_CASE("exception entry count 2 exceeds the 31 bytes left",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              rec_code(&b, CODE(I(HALT, 0))); bb_u32(&b, 0); bb_u32(&b, 0);
              bb_u32(&b, 2); bb_put(&b, (uint8_t[31]){0}, 31));
#undef HUGE_CASE
}
END_TEST

START_TEST(test_body_errors)
{
    bb b;
    size_t len;
    uint8_t *img;
#define BODY_CASE(want, ...) \
    do { \
        b.len = 0; \
        __VA_ARGS__; \
        img = seal(b.p, b.len, &len); \
        read_fails(img, len, want); \
        free(img); \
    } while (0)

    BODY_CASE("no code objects", mod_start(&b, 0));
    BODY_CASE("garbage after the last code object",
              mod_start(&b, 1); rec_halt_module(&b); bb_u8(&b, 0));
    BODY_CASE("corrupt body at byte 42: unknown code flags 0x2",
              mod_start(&b, 1); bb_u32(&b, 2); bb_put(&b, (uint8_t[40]){0}, 40));
    BODY_CASE("the first code object is not a module body",
              mod_start(&b, 1); rec_head(&b, 0, "f", 0, 0, 0, 1);
              rec_code(&b, CODE(I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0)));
              rec_no_tables(&b));
    BODY_CASE("code object 1 is a second module body",
              mod_start(&b, 2); rec_halt_module(&b); rec_halt_module(&b));
    BODY_CASE("entry stack depth 1 (must be 0 in a file)",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 1, 1);
              rec_code(&b, CODE(I(POP, 0), I(HALT, 0))); rec_no_tables(&b));
    BODY_CASE("unknown constant tag 8",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              rec_code(&b, CODE(I(HALT, 0))); bb_u32(&b, 1); bb_u8(&b, 8);
              bb_u32(&b, 0); bb_u32(&b, 0));
    /* A tuple nested 33 deep. */
    BODY_CASE("tuple constants nested deeper than 32",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
              rec_code(&b, CODE(I(HALT, 0))); bb_u32(&b, 1);
              for (int i = 0; i < 33; i++) { bb_u8(&b, 7); bb_u32(&b, 1); }
              bb_u8(&b, 0); bb_u32(&b, 0); bb_u32(&b, 0));
    /* The verifier runs on every code object; its message follows the file name. */
    BODY_CASE("t.gbc: function g, offset 1: stack underflow (POP pops 1, depth 0)",
              mod_start(&b, 2); rec_halt_module(&b); rec_head(&b, 0, "g", 0, 0, 0, 1);
              rec_code(&b, CODE(I(RESUME, 0), I(POP, 0), I(LOAD_NONE, 0), I(RETURN, 0)));
              rec_no_tables(&b));
    BODY_CASE("t.gbc: function g, offset 0: function does not start with RESUME (every call "
              "must poll)",
              mod_start(&b, 2); rec_halt_module(&b); rec_head(&b, 0, "g", 0, 0, 0, 1);
              rec_code(&b, CODE(I(LOAD_NONE, 0), I(RETURN, 0))); rec_no_tables(&b));
    BODY_CASE("t.gbc: function <module>, offset 0: LOAD_CONST: constant index 0 out of range",
              mod_start(&b, 1); rec_head(&b, CO_MODULE, "<module>", 0, 0, 0, 1);
              rec_code(&b, CODE(I(LOAD_CONST, 0), I(HALT, 0))); rec_no_tables(&b));
#undef BODY_CASE

    /* A tuple nested exactly 32 deep is fine. */
    b.len = 0;
    mod_start(&b, 1);
    rec_head(&b, CO_MODULE, "m", 0, 0, 0, 0);
    rec_code(&b, CODE(I(HALT, 0)));
    bb_u32(&b, 1);
    for (int i = 0; i < 32; i++) {
        bb_u8(&b, 7);
        bb_u32(&b, 1);
    }
    bb_u8(&b, 0);
    bb_u32(&b, 0);
    bb_u32(&b, 0);
    img = seal(b.p, b.len, &len);
    vm_module m;
    read_ok(img, len, &m);
    value v = m.codes[0]->consts[0];
    for (int i = 0; i < 32; i++) {
        ck_assert_uint_eq(v.tag, T_TUPLE);
        ck_assert_uint_eq(AS_TUPLE(v)->len, 1);
        v = AS_TUPLE(v)->items[0];
    }
    ck_assert_uint_eq(v.tag, T_NONE);
    vm_module_free(&m);
    free(img);
}
END_TEST

/* ---- round trip ---- */

static void values_equal(value a, value b)
{
    ck_assert_uint_eq(a.tag, b.tag);
    switch (a.tag) {
    case T_STR:
    case T_BYTES:
        ck_assert_uint_eq(AS_STR(a)->len, AS_STR(b)->len);
        ck_assert(memcmp(AS_STR(a)->data, AS_STR(b)->data, AS_STR(a)->len) == 0);
        break;
    case T_TUPLE:
        ck_assert_uint_eq(AS_TUPLE(a)->len, AS_TUPLE(b)->len);
        for (size_t i = 0; i < AS_TUPLE(a)->len; i++)
            values_equal(AS_TUPLE(a)->items[i], AS_TUPLE(b)->items[i]);
        break;
    case T_FLOAT:
        ck_assert(memcmp(&a.u.f, &b.u.f, sizeof(double)) == 0);
        break;
    default:
        ck_assert(a.u.i == b.u.i);
        break;
    }
}

static void strs_equal(const vm_str *a, const vm_str *b)
{
    ck_assert_uint_eq(a->len, b->len);
    ck_assert(memcmp(a->data, b->data, a->len) == 0);
}

static void codes_equal(const vm_code *a, const vm_code *b)
{
    ck_assert_uint_eq(a->flags, b->flags);
    strs_equal(a->name, b->name);
    strs_equal(a->file, b->file);
    ck_assert_uint_eq(a->nparams, b->nparams);
    ck_assert_uint_eq(a->nlocals, b->nlocals);
    ck_assert_uint_eq(a->entry_depth, b->entry_depth);
    ck_assert_uint_eq(a->maxstack, b->maxstack);
    ck_assert_uint_eq(a->ncode, b->ncode);
    ck_assert(memcmp(a->code, b->code, a->ncode * sizeof(instr)) == 0);
    ck_assert(memcmp(a->lines, b->lines, a->ncode * sizeof(uint32_t)) == 0);
    ck_assert_uint_eq(a->nconsts, b->nconsts);
    for (uint32_t i = 0; i < a->nconsts; i++)
        values_equal(a->consts[i], b->consts[i]);
    ck_assert_uint_eq(a->nnames, b->nnames);
    for (uint32_t i = 0; i < a->nnames; i++)
        strs_equal(a->names[i], b->names[i]);
    for (uint32_t i = 0; i < a->nlocals; i++)
        strs_equal(a->localnames[i], b->localnames[i]);
    ck_assert_uint_eq(a->nexc, b->nexc);
    ck_assert(memcmp(a->exc, b->exc, a->nexc * sizeof(vm_exc_entry)) == 0);
    ck_assert_ptr_null(b->exec);           /* read, not linked */
}

START_TEST(test_round_trip)
{
    vm_thread *t = vm_main_thread();
    /* Body: try: g(1, 2) except: pass; with constants of every kind. */
    vm_code *body = MOD(3, I(LOAD_GLOBAL, 0), I(LOAD_INT, -3), I(LOAD_CONST, 2), I(CALL, 2),
                        I(POP, 0), I(HALT, 0), I(POP, 0), I(HALT, 0));
    add_exc(body, 0, 5, 6, 0);
    value inner[] = {V_INT(1), vm_str_new(t, "a\0b", 3), vm_tuple_new(t, 0, NULL)};
    value outer[] = {V_FLOAT(-0.0), vm_tuple_new(t, 3, inner)};
    value consts[] = {V_NONE, V_BOOL(1), V_BOOL(0), V_INT(INT64_MIN), V_INT(INT64_MAX),
                      V_FLOAT(NAN), V_FLOAT(1e300), vm_str_c(t, "h\xc3\xa9llo"),
                      vm_bytes_new(t, "\0\xff\x01", 3), vm_tuple_new(t, 2, outer)};
    body->nconsts = sizeof consts / sizeof consts[0];
    body->consts = realloc(body->consts, sizeof consts);
    memcpy(body->consts, consts, sizeof consts);
    body->names[0] = str("g");
    body->names[1] = str("unused");
    body->nnames = 2;
    for (uint32_t i = 0; i < body->ncode; i++)
        body->lines[i] = 100 + 3 * i;

    vm_code *g = FN(3, 2, I(RESUME, 0), I(LOAD_LOCAL, 0), I(LOAD_LOCAL, 1), I(ADD, 0),
                    I(STORE_LOCAL, 2), I(LOAD_LOCAL, 2), I(RETURN, 0), I(RETURN, 0));
    g->name = str("g");
    g->nparams = 2;
    add_exc(g, 1, 7, 7, 0);
    vm_code *h = FN(0, 1, I(RESUME, 0), I(LOAD_NONE, 0), I(RETURN, 0));
    h->name = str("");
    h->nconsts = h->nnames = 0;
    vm_code *codes[] = {body, g, h};
    vm_module src = {3, codes};
    for (uint32_t i = 0; i < src.ncodes; i++)
        accept(codes[i]);

    size_t len;
    uint8_t *img = vm_bc_write(&src, &len);
    ck_assert_ptr_nonnull(img);
    vm_module m;
    read_ok(img, len, &m);
    ck_assert_uint_eq(m.ncodes, 3);
    for (uint32_t i = 0; i < 3; i++)
        codes_equal(codes[i], m.codes[i]);
    ck_assert_ptr_eq(m.codes[0]->file, m.codes[2]->file);   /* one file name per module */

    size_t len2;
    uint8_t *img2 = vm_bc_write(&m, &len2);
    ck_assert_ptr_nonnull(img2);
    ck_assert_uint_eq(len, len2);
    ck_assert(memcmp(img, img2, len) == 0);
    vm_module_free(&m);
    free(img);
    free(img2);
}
END_TEST

/* vm_bc_write produces exactly the layout the independent writer above produces. */
START_TEST(test_write_matches_layout)
{
    bb b = {.len = 0};
    small_module(&b);
    size_t want_len;
    uint8_t *want = seal(b.p, b.len, &want_len);
    vm_module m;
    read_ok(want, want_len, &m);
    size_t len;
    uint8_t *img = vm_bc_write(&m, &len);
    ck_assert_ptr_nonnull(img);
    ck_assert_uint_eq(len, want_len);
    ck_assert(memcmp(img, want, len) == 0);
    vm_module_free(&m);
    free(img);
    free(want);
}
END_TEST

START_TEST(test_write_refuses_unserialisable)
{
    vm_thread *t = vm_main_thread();
    vm_code *body = MOD(1, I(LOAD_CONST, 0), I(HALT, 0));
    body->consts[0] = vm_list_new(t, 0);
    vm_code *codes[] = {body};
    vm_module m = {1, codes};
    size_t len;
    ck_assert_ptr_null(vm_bc_write(&m, &len));

    value v = V_NONE;
    for (int i = 0; i < 33; i++)
        v = vm_tuple_new(t, 1, &v);
    body->consts[0] = v;
    ck_assert_ptr_null(vm_bc_write(&m, &len));
    body->consts[0] = AS_TUPLE(v)->items[0];    /* 32 deep: the reader's limit */
    uint8_t *img = vm_bc_write(&m, &len);
    ck_assert_ptr_nonnull(img);
    vm_module out;
    read_ok(img, len, &out);
    vm_module_free(&out);
    free(img);
}
END_TEST

Suite *suite_loader(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("verifier");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_verify_structure);
    tcase_add_test(tc, test_verify_module_rules);
    tcase_add_test(tc, test_verify_operands);
    tcase_add_test(tc, test_verify_jumps);
    tcase_add_test(tc, test_verify_stack);
    tcase_add_test(tc, test_verify_exc_table);
    tcase_add_test(tc, test_verify_exc_ranges_long);
    tcase_add_test(tc, test_verify_resume);
    tcase_add_test(tc, test_verify_long_name_one_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("bcfile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_header_ok);
    tcase_add_test(tc, test_header_errors);
    tcase_add_test(tc, test_truncation_every_length);
    tcase_add_test(tc, test_truncation_resealed);
    tcase_add_test(tc, test_body_flips_resealed);
    tcase_add_test(tc, test_body_huge_counts);
    tcase_add_test(tc, test_body_errors);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_write_matches_layout);
    tcase_add_test(tc, test_write_refuses_unserialisable);
    suite_add_tcase(s, tc);
    return s;
}
