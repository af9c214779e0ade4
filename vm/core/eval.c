/* SPDX-License-Identifier: MIT */
/* The dispatch loop.
 *
 * Notes
 * -----
 * vm_eval runs bytecode frames of one thread, holding its interpreter's GIL, from the
 * innermost frame until a frame that was entered from C (vm_call, vm_run_code) returns or
 * halts.  Bytecode-to-bytecode calls push a frame and continue in the same C activation, so
 * recursion depth is bounded by the thread's recursion limit, not the C stack; natives that
 * call back into bytecode re-enter vm_eval and are bounded by c_recursion_remaining.
 *
 * Code reaching this loop has passed the verifier (vm/toolchain/verify.c): operands are in range and
 * every instruction has one known stack depth within maxstack, so the loop does no bounds
 * checks of its own on locals, constants or the value stack.  It runs each code object's
 * execution copy (vm/core/quicken.c), directly threaded: each instruction carries its handler's
 * address and its decoded operand, so a dispatch is a load and an indirect jump.
 *
 * Polls: RESUME (function entry) and JUMP_BACKWARD read the thread's eval-breaker word with
 * one relaxed load; if any bit is set, vm_handle_pending runs the handlers in CPython's
 * order.  JUMP_BACKWARD polls *before* jumping, so an exception raised at the poll belongs
 * to the jump's own offset and a try region around the loop catches it (design.md §9.6).
 * Every loop passes a poll because only JUMP_BACKWARD may jump backward (verifier), and an
 * exception that goes to a handler at or before the raising instruction polls on the way
 * (`unwind`).  Before a poll or a native call the innermost frame (t->frame) and its ip and
 * sp are saved, so the collector and other threads see a consistent stack.  Building with -DGILVM_NO_POLL
 * compiles the polls out (bench/ only: it measures what polling costs).
 *
 * Calls: CALL links the thread's next frame record over the arguments, which become the
 * callee's first locals in place (vm/core/frame.h, docs/architecture.md), and RETURN stores the
 * result in the callee's slot, the caller's sp.  The innermost frame is a register; it and
 * a frame's ip and sp are written to memory only when the frame calls, polls or leaves;
 * until then t->frame and a frame just entered's sp are stale, and nothing reads them (the
 * collector runs only at a poll, other threads only while this one is detached).  CALL
 * takes what it needs from the function its site called last when that is the callee
 * (vm_xinstr.aux), so the callee's ip does not wait for the loads that produced it.
 *
 * Values are copied field by field (SETV), and the loop's registers are few on purpose:
 * docs/architecture.md ("The eval loop") tells which stalls each rule avoids.
 *
 * Errors: every failing path sets t->exc and jumps to `error`, which records a traceback
 * entry and unwinds through the exception table, frame by frame (RERAISE of an exception
 * that has this frame's entry already enters at `unwind`). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vm/core/frame.h"
#include "vm/core/ops.h"

#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif
/* Direct threading with computed goto where the compiler has it (gcc, clang); a switch
 * otherwise, or with -DGILVM_SWITCH_DISPATCH. */
#if defined(__GNUC__) && !defined(GILVM_SWITCH_DISPATCH)
#define USE_COMPUTED_GOTO 1
#else
#define USE_COMPUTED_GOTO 0
#endif

/* Finds the exception-table entry covering `pc`, innermost first; NULL if none. */
static const vm_exc_entry *find_handler(const vm_code *c, uint32_t pc)
{
    for (uint32_t i = 0; i < c->nexc; i++)
        if (pc >= c->exc[i].start && pc < c->exc[i].end)
            return &c->exc[i];
    return NULL;
}

/* The offset of the instruction before `ip` (the one that ran last) in `c`'s code.  Not
 * inlined: the division by sizeof(vm_xinstr) would otherwise keep its multiplier in one of
 * the registers the loop needs. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static uint32_t pc_before(const vm_code *c, const vm_xinstr *ip)
{
    return (uint32_t)(ip - c->exec) - 1;
}

/* Unwinding within the innermost frame `f` (t->frame, its ip saved): finds the handler of
 * t's exception raised by the instruction before f->ip.  Found: the stack is cut to the
 * handler's depth, the exception pushed, and f->sp and f->ip say where to go on; 1.  None in
 * `f`, or the exception is one no handler catches: 0.  A handler at or before the raising
 * instruction closes a loop: a backward edge, which polls as JUMP_BACKWARD does
 * (docs/bytecode.md), the exception in flight waiting, rooted; an exception the poll raises
 * replaces it, gets this frame's traceback entry, and the search starts over.  Not inlined:
 * the loop's registers (as pc_before). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int unwind_frame(vm_thread *t, vm_frame *f)
{
    for (;;) {
        uint32_t pc = pc_before(f->code, f->ip);
        const vm_exc_entry *h = find_handler(f->code, pc);
        if (!h || vm_exc_uncatchable(t))
            return 0;
        f->sp = FRAME_STACK(f) + h->depth;
#ifndef GILVM_NO_POLL
        if (h->target <= pc && rt_breaker_load(&t->base.eval_breaker)) {
            value inflight = t->exc;
            t->exc = V_UNDEF;
            t->roots[t->nroots++] = inflight;
            int rc = vm_handle_pending(t);
            t->nroots--;
            if (rc) {
                vm_exc_add_tb(t, AS_EXC(t->exc), f->code, pc);
                continue;
            }
            t->exc = inflight;
        }
#endif
        *f->sp++ = t->exc;
        t->exc = V_UNDEF;
        f->ip = f->code->exec + h->target;
        return 1;
    }
}

/* The handler table, published by vm_eval(NULL, NULL): the labels are local to vm_eval. */
static const void *const *eval_handlers;

const void *const *vm_eval_handlers(void)
{
    if (!eval_handlers)
        vm_eval(NULL, NULL);
    return eval_handlers;
}

int vm_eval(vm_thread *t, value *result)
{
    /* The loop's registers: the innermost frame, its ip, sp and locals, and a count of
     * instructions run.  Its code (CO) and the interpreter (IN) are loads on the paths that
     * need them rather than registers the hot paths would pay for with spills. */
    vm_frame *frame;
    const vm_xinstr *ip;
    value *sp, *locals;
    uint64_t nexec = 0;
    value rv;                   /* the value RETURN returns */
    value *args;                /* CALL's arguments, and at args[-1] ... */
    value fv;                   /* ... the callee (set by CALL and GLOBAL_LOCAL_CALL) */

#define IN VM_INTERP(t)
#define CO (frame->code)
/* The operand of the instruction being run, read where a handler needs it (decoding it at
 * every dispatch costs the handlers that have none). */
#define ARG ((uint32_t)ip[-1].arg)
/* The frame's state in its record, and the innermost frame in t->frame, are written only
 * when C code may read them: before a poll or a call out, and when the loop leaves. */
#define LOAD_FRAME() \
    do { frame = t->frame; ip = frame->ip; sp = frame->sp; locals = frame->locals; } while (0)
#define SAVE_FRAME() do { t->frame = frame; frame->ip = ip; frame->sp = sp; } while (0)
/* Jump operands in the execution copy are byte offsets from the next instruction
 * (vm/core/quicken.c): one add on the path from a jump's operand to the next dispatch. */
#define JUMP_BY(off) (ip = (const vm_xinstr *)((const char *)ip + (int32_t)(off)))
/* Values are copied field by field, never as one 16-byte block: a block load of a value that
 * was stored as two fields (V_INT and the like) cannot take its data from the store buffer
 * and waits for the stores to reach the cache. */
#define SETV(dst, v) do { value v_ = (v); (dst).tag = v_.tag; (dst).u = v_.u; } while (0)
#define PUSH(v) do { SETV(sp[0], v); sp++; } while (0)
#define POP() (*--sp)
#define RAISE(...) do { vm_raise(t, __VA_ARGS__); goto error; } while (0)

#ifdef GILVM_NO_POLL
#define POLL() ((void)0)
#else
#define POLL() \
    do { \
        if (UNLIKELY(rt_breaker_load(&t->base.eval_breaker))) { \
            SAVE_FRAME(); \
            t->base.stats.bytecodes += nexec; \
            nexec = 0; \
            if (vm_handle_pending(t)) \
                goto error; \
        } \
    } while (0)
#endif

#if USE_COMPUTED_GOTO
    static const void *const labels[256] = {
#define OP(name, kind, pop, push, jpush, flags, picture) [OP_##name] = &&L_##name,
#define SUPER(name, n, i1, i2, i3, i4, i5) [OP_##name] = &&L_##name,
#include "opcodes/opcodes.def"
#undef SUPER
#undef OP
    };
#define TARGET(name) L_##name:
#define DISPATCH() \
    do { nexec++; goto *(ip++)->handler; } while (0)
#else
#define TARGET(name) case OP_##name:
#define DISPATCH() goto dispatch    /* not `continue`: the unwind loop below dispatches too */
#endif

    if (UNLIKELY(!t)) {         /* vm_eval_handlers() asks for the table */
#if USE_COMPUTED_GOTO
        eval_handlers = labels;
#endif
        return 0;
    }
    LOAD_FRAME();
    t->c_depth++;

#if USE_COMPUTED_GOTO
    DISPATCH();
#else
dispatch:
    nexec++;
    switch ((opcode)(ip++)->op) {
#endif

    TARGET(NOP) DISPATCH();

    TARGET(RESUME) {
        POLL();
        DISPATCH();
    }

    TARGET(HALT) {
        SAVE_FRAME();
        *result = V_NONE;
        goto leave;
    }

    TARGET(POP) { sp--; DISPATCH(); }
    TARGET(DUP) { SETV(sp[0], sp[-1]); sp++; DISPATCH(); }
    TARGET(SWAP) { value a = sp[-1]; SETV(sp[-1], sp[-2]); SETV(sp[-2], a); DISPATCH(); }
    TARGET(ROT3) {
        value c = sp[-1];
        SETV(sp[-1], sp[-2]);
        SETV(sp[-2], sp[-3]);
        SETV(sp[-3], c);
        DISPATCH();
    }
    TARGET(OVER) { SETV(sp[0], sp[-2]); sp++; DISPATCH(); }

    TARGET(LOAD_CONST) { PUSH(CO->consts[ARG]); DISPATCH(); }
    TARGET(LOAD_INT) { PUSH(V_INT(ip[-1].arg)); DISPATCH(); }
    TARGET(LOAD_NONE) { PUSH(V_NONE); DISPATCH(); }

    TARGET(LOAD_LOCAL) {
        value v = locals[ARG];
        if (UNLIKELY(v.tag == T_UNDEF))
            RAISE(IN->exc.name_error, "local variable '%s' referenced before assignment",
                  CO->localnames[ARG]->data);
        PUSH(v);
        DISPATCH();
    }
    TARGET(STORE_LOCAL) { sp--; SETV(locals[ARG], *sp); DISPATCH(); }

    TARGET(LOAD_GLOBAL) {
        value v = *(value *)ip[-1].aux;     /* the global's cell */
        if (UNLIKELY(v.tag == T_UNDEF))
            RAISE(IN->exc.name_error, "name '%s' is not defined", CO->names[ARG]->data);
        PUSH(v);
        DISPATCH();
    }
    TARGET(STORE_GLOBAL) { sp--; SETV(*(value *)ip[-1].aux, *sp); DISPATCH(); }

/* Two ints, then two floats, inline; anything else (mixed int and float, sequences) in
 * vm_binop. */
#define NUM_BINOP(name, builtin, fop) \
    TARGET(name) { \
        value b = sp[-1], a = sp[-2]; \
        if (LIKELY(a.tag == T_INT && b.tag == T_INT)) { \
            int64_t r; \
            if (UNLIKELY(builtin(a.u.i, b.u.i, &r))) \
                RAISE(IN->exc.overflow_error, "integer overflow"); \
            sp[-2].u.i = r; \
            sp--; \
            DISPATCH(); \
        } \
        if (LIKELY(a.tag == T_FLOAT && b.tag == T_FLOAT)) { \
            sp[-2].u.f = a.u.f fop b.u.f; \
            sp--; \
            DISPATCH(); \
        } \
        if (vm_binop(t, OP_##name, a, b, &sp[-2])) \
            goto error; \
        sp--; \
        DISPATCH(); \
    }
    NUM_BINOP(ADD, __builtin_add_overflow, +)
    NUM_BINOP(SUB, __builtin_sub_overflow, -)
    NUM_BINOP(MUL, __builtin_mul_overflow, *)
    TARGET(DIV) {
        value b = sp[-1], a = sp[-2];
        if (LIKELY(a.tag == T_FLOAT && b.tag == T_FLOAT && b.u.f != 0.0)) {
            sp[-2].u.f = a.u.f / b.u.f;
            sp--;
            DISPATCH();
        }
        if (vm_binop(t, OP_DIV, a, b, &sp[-2]))
            goto error;
        sp--;
        DISPATCH();
    }
/* v % m for ints with m > 0 (the usual case): the remainder, moved up into [0, m), as
 * Python's has m's sign. */
#define INT_MOD_POS(v, m) ((v) % (m) < 0 ? (v) % (m) + (m) : (v) % (m))
    TARGET(MOD) {
        value b = sp[-1], a = sp[-2];
        if (LIKELY(a.tag == T_INT && b.tag == T_INT && b.u.i > 0)) {
            sp[-2].u.i = INT_MOD_POS(a.u.i, b.u.i);
            sp--;
            DISPATCH();
        }
        if (vm_binop(t, OP_MOD, a, b, &sp[-2]))
            goto error;
        sp--;
        DISPATCH();
    }

#define SLOW_BINOP(name) \
    TARGET(name) { \
        if (vm_binop(t, OP_##name, sp[-2], sp[-1], &sp[-2])) \
            goto error; \
        sp--; \
        DISPATCH(); \
    }
    SLOW_BINOP(FLOORDIV)
    SLOW_BINOP(POW)
    SLOW_BINOP(BIT_AND)
    SLOW_BINOP(BIT_OR)
    SLOW_BINOP(BIT_XOR)
    SLOW_BINOP(SHL)
    SLOW_BINOP(SHR)
    SLOW_BINOP(CONTAINS)

    TARGET(NEG) {
        value a = sp[-1];
        if (a.tag == T_INT) {
            if (UNLIKELY(a.u.i == INT64_MIN))
                RAISE(IN->exc.overflow_error, "integer overflow");
            sp[-1].u.i = -a.u.i;
        } else if (a.tag == T_FLOAT)
            sp[-1].u.f = -a.u.f;
        else if (a.tag == T_BOOL)
            sp[-1] = V_INT(-a.u.i);
        else
            RAISE(IN->exc.type_error, "bad operand type for unary -: '%s'", vm_type_name(a));
        DISPATCH();
    }
    TARGET(NOT) { sp[-1] = V_BOOL(!vm_truthy(sp[-1])); DISPATCH(); }

/* Two ints, then two floats (C's compares are IEEE's: false with a NaN, as Python's),
 * inline; int against float, exactly, and the other types in vm_compare. */
#define COMPARE(name, cop) \
    TARGET(name) { \
        value b = sp[-1], a = sp[-2]; \
        if (LIKELY(a.tag == T_INT && b.tag == T_INT)) { \
            sp[-2] = V_BOOL(a.u.i cop b.u.i); \
            sp--; \
            DISPATCH(); \
        } \
        if (LIKELY(a.tag == T_FLOAT && b.tag == T_FLOAT)) { \
            sp[-2] = V_BOOL(a.u.f cop b.u.f); \
            sp--; \
            DISPATCH(); \
        } \
        if (vm_compare(t, OP_##name, a, b, &sp[-2])) \
            goto error; \
        sp--; \
        DISPATCH(); \
    }
    COMPARE(LT, <)
    COMPARE(LE, <=)
    COMPARE(GT, >)
    COMPARE(GE, >=)
    TARGET(EQ) { sp[-2] = V_BOOL(vm_equal(sp[-2], sp[-1])); sp--; DISPATCH(); }
    TARGET(NE) { sp[-2] = V_BOOL(!vm_equal(sp[-2], sp[-1])); sp--; DISPATCH(); }
    TARGET(IS) {
        value a = sp[-2], b = sp[-1];
        bool same = a.tag == b.tag &&
                    (IS_OBJ(a) ? a.u.o == b.u.o : a.tag == T_FLOAT ? a.u.f == b.u.f : a.u.i == b.u.i);
        sp[-2] = V_BOOL(same);
        sp--;
        DISPATCH();
    }

    TARGET(JUMP_FORWARD) { JUMP_BY(ip[-1].arg); DISPATCH(); }
    TARGET(JUMP_BACKWARD) {
        POLL();
        JUMP_BY(ip[-1].arg);
        DISPATCH();
    }
    TARGET(POP_JUMP_IF_FALSE) {
        value c = POP();
        if (c.tag == T_BOOL ? !c.u.i : !vm_truthy(c))
            JUMP_BY(ip[-1].arg);
        DISPATCH();
    }
    TARGET(POP_JUMP_IF_TRUE) {
        value c = POP();
        if (c.tag == T_BOOL ? c.u.i : vm_truthy(c))
            JUMP_BY(ip[-1].arg);
        DISPATCH();
    }

    TARGET(GET_ITER) {
        if (vm_get_iter(t, sp[-1], &sp[-1]))
            goto error;
        DISPATCH();
    }
/* A range iterator's next position (as vm_iter_next: past the end on overflow). */
#define RANGE_STEP(it) \
    do { \
        if (UNLIKELY(__builtin_add_overflow((it)->pos, (it)->step, &(it)->pos))) \
            (it)->pos = (it)->stop; \
    } while (0)
    TARGET(FOR_ITER) {
        if (UNLIKELY(sp[-1].tag != T_ITER))
            RAISE(IN->exc.type_error, "'%s' object is not an iterator", vm_type_name(sp[-1]));
        vm_iter *it = (vm_iter *)sp[-1].u.o;
        if (LIKELY(it->seq.tag == T_NONE && it->step > 0)) {   /* a range counting up */
            if (it->pos < it->stop) {
                sp[0] = V_INT(it->pos);
                RANGE_STEP(it);
                sp++;
                DISPATCH();
            }
            sp--;
            JUMP_BY(ip[-1].arg);
            DISPATCH();
        }
        int r = vm_iter_next(t, it, sp);
        if (r > 0) {
            sp++;
            DISPATCH();
        }
        if (r < 0)
            goto error;
        sp--;
        JUMP_BY(ip[-1].arg);
        DISPATCH();
    }

    TARGET(CALL) {
        args = sp - ARG;
        fv = args[-1];
        goto do_call;           /* the next line; GLOBAL_LOCAL_CALL comes in there too */
    }
    do_call: {
        /* ip is past the CALL (ip[-1]); args and fv are set.  The function this site called
         * last (ip[-1].aux) is the guess: when it is the one called, everything the call
         * reads comes from it, so the callee's ip and frame do not wait for the loads that
         * produced fv.  A miss replaces the guess; reading through the function actually
         * called makes a stale guess harmless. */
        vm_func *fn = ip[-1].aux;
        if (UNLIKELY((fv.tag != T_FUNC) | (fv.u.o != (vm_obj *)fn))) {
            if (fv.tag != T_FUNC)
                goto call_other;
            fn = AS_FUNC(fv);
            ((vm_xinstr *)ip)[-1].aux = fn;
        }
        if (UNLIKELY(ARG != fn->nparams)) {
            vm_code *cc = fn->code;
            RAISE(IN->exc.type_error, "%s() takes %u positional argument%s but %u %s given",
                  cc->name->data, cc->nparams, cc->nparams == 1 ? "" : "s", ARG,
                  ARG == 1 ? "was" : "were");
        }
        if (UNLIKELY(frame->depth >= (uint32_t)t->base.recursion_limit))
            RAISE(IN->exc.recursion_error, "maximum recursion depth exceeded");
        /* The caller keeps the callee on its stack (the result goes in its slot); the
         * arguments become the callee's first locals, in place. */
        frame->ip = ip;
        frame->sp = args;
        uint32_t flags = 0;
        if (UNLIKELY((size_t)(t->stack_limit - args) < fn->framesize)) {
            value *base = vm_stack_grow(t, fn->framesize);
            if (UNLIKELY(!base))
                goto error;
            memcpy(base, args, ARG * sizeof(value));
            args = base;
            flags = FR_NEW_CHUNK;
        }
        vm_frame *f = vm_frame_next(t, frame);
        vm_frame_init(f, fn->code, args, ARG, fn->nlocals, flags);
        frame = f;
        locals = args;
        sp = args + fn->nlocals;
        /* Every function starts with RESUME (verifier): do its poll here and go on past
         * it, one dispatch fewer per call.  An exception raised by the poll belongs to
         * offset 0, as if RESUME had raised it. */
        ip = fn->entry;
        nexec++;
        POLL();
        DISPATCH();
    }
    call_other: {
        value out;
        if (fv.tag == T_NATIVE) {
            vm_native *nf = AS_NATIVE(fv);
            /* The common cases of a few natives, inline (vm_native_fast): the function's own
             * result, without the call; any other case calls it. */
            switch (nf->fast) {
            case VM_FAST_NONE:
                break;
            case VM_FAST_GET:
                if ((ARG == 2 || ARG == 3) && args[0].tag == T_DICT) {
                    int r = vm_dict_find(AS_DICT(args[0]), args[1], &out);
                    if (LIKELY(r >= 0)) {
                        if (!r)
                            out = ARG == 3 ? args[2] : V_NONE;
                        goto call_done;
                    }
                }
                break;
            case VM_FAST_LEN:
                if (ARG == 1) {
                    value v = args[0];
                    if (v.tag == T_LIST || v.tag == T_DICT || v.tag == T_STR) {
                        out = V_INT((int64_t)(v.tag == T_LIST ? AS_LIST(v)->len
                                              : v.tag == T_DICT ? AS_DICT(v)->len
                                              : AS_STR(v)->len));
                        goto call_done;
                    }
                }
                break;
            case VM_FAST_APPEND:
                if (ARG == 2 && args[0].tag == T_LIST) {
                    vm_list *l = AS_LIST(args[0]);
                    if (LIKELY(l->len < l->cap)) {
                        l->items[l->len++] = args[1];
                        out = V_NONE;
                        goto call_done;
                    }
                }
                break;
            }
            SAVE_FRAME();
            if (nf->arity >= 0 && (uint32_t)nf->arity != ARG)
                RAISE(IN->exc.type_error, "%s() takes exactly %d argument%s (%u given)", nf->name,
                      nf->arity, nf->arity == 1 ? "" : "s", ARG);
            if (nf->fn(t, (int)ARG, sp - ARG, &out))
                goto error;
        } else {
            SAVE_FRAME();
            if (vm_call_other(t, fv, (int)ARG, sp - ARG, &out))
                goto error;
        }
    call_done:
        sp -= ARG + 1;
        PUSH(out);
        DISPATCH();
    }

    /* RETURN and RETURN_LOCAL each have the fast path inline (one jump fewer per return than
     * a shared tail, and a dispatch site of their own). */
#define DO_RETURN() \
    do { \
        if (UNLIKELY(frame->flags)) \
            goto return_slow; \
        sp = locals; \
        SETV(sp[-1], rv); \
        frame = frame->prev; \
        ip = frame->ip; \
        locals = frame->locals; \
        DISPATCH(); \
    } while (0)
    TARGET(RETURN) {
        rv = sp[-1];
        DO_RETURN();
    }
    return_slow: {
        /* The callee's record has flags: restore what they say, leave if it was entered from
         * C, else return to its caller's sp, which a new stack chunk moved away. */
        vm_frame *f = frame;
        int from_c = f->flags & FR_FROM_C;
        vm_frame_unlink(t, f);
        if (from_c) {
            *result = rv;
            goto leave;
        }
        frame = f->prev;
        sp = frame->sp;
        SETV(sp[-1], rv);
        ip = frame->ip;
        locals = frame->locals;
        DISPATCH();
    }

    TARGET(BUILD_LIST) {
        value l = vm_list_new(t, ARG);
        vm_values_copy(AS_LIST(l)->items, sp - ARG, ARG);
        AS_LIST(l)->len = ARG;
        sp -= ARG;
        PUSH(l);
        DISPATCH();
    }
    TARGET(BUILD_TUPLE) {
        value tu = vm_tuple_new(t, ARG, sp - ARG);
        sp -= ARG;
        PUSH(tu);
        DISPATCH();
    }
    TARGET(BUILD_DICT) {
        value d = vm_dict_new(t);
        for (uint32_t i = 0; i < ARG; i++)
            if (vm_dict_set(t, AS_DICT(d), sp[-2 * (int)(ARG - i)], sp[-2 * (int)(ARG - i) + 1]))
                goto error;
        sp -= 2 * ARG;
        PUSH(d);
        DISPATCH();
    }
/* The fast path of c[k]: a list and an int index in range (GET_ITEM takes a tuple's too);
 * other cases go to vm/core/ops.c. */
#define LIST_INDEX_OK(c, k) \
    ((c).tag == T_LIST && (k).tag == T_INT && (uint64_t)(k).u.i < AS_LIST(c)->len)
    TARGET(GET_ITEM) {
        value c = sp[-2], k = sp[-1];
        if (LIKELY(LIST_INDEX_OK(c, k))) {
            value v = AS_LIST(c)->items[k.u.i];
            SETV(sp[-2], v);
            sp--;
            DISPATCH();
        }
        if (c.tag == T_TUPLE && k.tag == T_INT && (uint64_t)k.u.i < AS_TUPLE(c)->len) {
            value v = AS_TUPLE(c)->items[k.u.i];
            SETV(sp[-2], v);
            sp--;
            DISPATCH();
        }
        if (vm_get_item(t, sp[-2], sp[-1], &sp[-2]))
            goto error;
        sp--;
        DISPATCH();
    }
    TARGET(SET_ITEM) {
        value c = sp[-3], k = sp[-2];
        if (LIKELY(LIST_INDEX_OK(c, k))) {
            SETV(AS_LIST(c)->items[k.u.i], sp[-1]);
            sp -= 3;
            DISPATCH();
        }
        if (c.tag == T_DICT && vm_dict_set_hinted(AS_DICT(c), k, sp[-1])) {
            sp -= 3;
            DISPATCH();
        }
        if (c.tag == T_DICT ? vm_dict_set(t, AS_DICT(c), k, sp[-1])
                            : vm_set_item(t, c, k, sp[-1]))
            goto error;
        sp -= 3;
        DISPATCH();
    }

    TARGET(RAISE) {
        vm_raise_value(t, POP());
        goto error;
    }
    TARGET(RERAISE) {
        value e = POP();
        vm_raise_value(t, e);
        if (e.tag == T_EXC)
            goto unwind;        /* its traceback has this frame's entry already */
        goto error;
    }
    /* The first of these in a frame saves the handled exception its frame pops back to. */
#define SAVE_EXC_INFO() \
    do { \
        if (!(frame->flags & FR_EXC_INFO)) { \
            SETV(frame->saved_exc, t->handled); \
            frame->flags |= FR_EXC_INFO; \
        } \
    } while (0)
    TARGET(PUSH_EXC_INFO) {
        SAVE_EXC_INFO();
        value e = sp[-1];
        SETV(sp[-1], t->handled);
        PUSH(e);
        SETV(t->handled, e);
        DISPATCH();
    }
    TARGET(POP_EXCEPT) {
        SAVE_EXC_INFO();
        sp--;
        SETV(t->handled, *sp);
        DISPATCH();
    }
    TARGET(CHECK_EXC_MATCH) {
        value cls = sp[-1];
        int r = vm_exc_matches(t, sp[-2], cls);
        if (r < 0)
            goto error;
        sp[-1] = V_BOOL(r);
        DISPATCH();
    }

#if USE_COMPUTED_GOTO
    /* Superinstructions (opcodes.def, SUPER rows).  NEXT_ARG is the fused second
     * instruction's operand.  Any case off the fast path does only the first instruction's
     * work and dispatches normally to the second, which is still in place. */
#define NEXT_ARG() ((uint32_t)ip[0].arg)
/* Past the instructions that superinstruction `name` fused after its first. */
#define SKIP_FUSED(name) (ip += SUPER_LEN_##name - 1)
#define LOCALS_CMP_JUMP(name, cop, second) \
    TARGET(name) { \
        value a = locals[ARG], b = second; \
        if (UNLIKELY(a.tag != T_INT || b.tag != T_INT)) \
            goto L_LOAD_LOCAL; \
        SKIP_FUSED(name); \
        if (!(a.u.i cop b.u.i)) \
            JUMP_BY(ip[-1].arg); \
        DISPATCH(); \
    }
#define LL_SECOND locals[NEXT_ARG()]
#define LI_SECOND V_INT(ip[0].arg)
    LOCALS_CMP_JUMP(LL_LT_JUMP_IF_FALSE, <, LL_SECOND)
    LOCALS_CMP_JUMP(LL_LE_JUMP_IF_FALSE, <=, LL_SECOND)
    LOCALS_CMP_JUMP(LL_GT_JUMP_IF_FALSE, >, LL_SECOND)
    LOCALS_CMP_JUMP(LL_GE_JUMP_IF_FALSE, >=, LL_SECOND)
    LOCALS_CMP_JUMP(LI_LT_JUMP_IF_FALSE, <, LI_SECOND)
    LOCALS_CMP_JUMP(LI_LE_JUMP_IF_FALSE, <=, LI_SECOND)
    LOCALS_CMP_JUMP(LI_GT_JUMP_IF_FALSE, >, LI_SECOND)
    LOCALS_CMP_JUMP(LI_GE_JUMP_IF_FALSE, >=, LI_SECOND)
/* The stores that may end a loop come in pairs: NAME does a line y = ..., and NAME_LOOP the
 * same line and the loop's JUMP_BACKWARD after it, polling in its place (`tail`). */
#define NO_TAIL ((void)0)
#define LOOP_TAIL do { POLL(); JUMP_BY(ip[-1].arg); } while (0)
#define LOCAL_ADD_INT_STORE_OP(name, tail) \
    TARGET(name) { \
        value a = locals[ARG]; \
        int64_t r; \
        if (UNLIKELY(a.tag != T_INT || __builtin_add_overflow(a.u.i, (int64_t)ip[0].arg, &r))) \
            goto L_LOAD_LOCAL; \
        locals[ip[2].arg] = V_INT(r); \
        SKIP_FUSED(name); \
        tail; \
        DISPATCH(); \
    }
    LOCAL_ADD_INT_STORE_OP(LOCAL_ADD_INT_STORE, NO_TAIL)
    LOCAL_ADD_INT_STORE_OP(LOCAL_ADD_INT_STORE_LOOP, LOOP_TAIL)   /* a while loop's i = i + k */
#define LOCAL_INT_ARITH(name, builtin) \
    TARGET(name) { \
        value a = locals[ARG]; \
        int64_t r; \
        if (UNLIKELY(a.tag != T_INT || builtin(a.u.i, (int64_t)ip[0].arg, &r))) \
            goto L_LOAD_LOCAL; \
        PUSH(V_INT(r)); \
        SKIP_FUSED(name); \
        DISPATCH(); \
    }
    LOCAL_INT_ARITH(LOCAL_ADD_INT, __builtin_add_overflow)
    LOCAL_INT_ARITH(LOCAL_SUB_INT, __builtin_sub_overflow)
    LOCAL_INT_ARITH(LOCAL_MUL_INT, __builtin_mul_overflow)
/* r = a OP b for two ints (no overflow) or two floats; else `slow`.  The superinstructions'
 * arithmetic: off this path they do their first instruction only, and an overflow raises
 * there, in the instruction that overflows. */
#define NUM_FAST(a, b, builtin, fop, r, slow) \
    do { \
        if (LIKELY((a).tag == T_INT && (b).tag == T_INT)) { \
            int64_t i_; \
            if (UNLIKELY(builtin((a).u.i, (b).u.i, &i_))) \
                goto slow; \
            r = V_INT(i_); \
        } else if ((a).tag == T_FLOAT && (b).tag == T_FLOAT) \
            r = V_FLOAT((a).u.f fop (b).u.f); \
        else \
            goto slow; \
    } while (0)
#define LL_ARITH(name, builtin, fop) \
    TARGET(name) { \
        value a = locals[ARG], b = locals[NEXT_ARG()], r; \
        NUM_FAST(a, b, builtin, fop, r, L_LOAD_LOCAL); \
        PUSH(r); \
        SKIP_FUSED(name); \
        DISPATCH(); \
    }
    LL_ARITH(LL_ADD, __builtin_add_overflow, +)
    LL_ARITH(LL_SUB, __builtin_sub_overflow, -)
    LL_ARITH(LL_MUL, __builtin_mul_overflow, *)
    TARGET(CL_MUL) {
        value a = CO->consts[ARG], b = locals[NEXT_ARG()], r;
        NUM_FAST(a, b, __builtin_mul_overflow, *, r, L_LOAD_CONST);
        PUSH(r);
        SKIP_FUSED(CL_MUL);
        DISPATCH();
    }
#define LOCAL_ARITH(name, builtin, fop) \
    TARGET(name) { \
        value a = sp[-1], b = locals[ARG], r; \
        NUM_FAST(a, b, builtin, fop, r, L_LOAD_LOCAL); \
        SETV(sp[-1], r); \
        SKIP_FUSED(name); \
        DISPATCH(); \
    }
    LOCAL_ARITH(LOCAL_ADD, __builtin_add_overflow, +)
    LOCAL_ARITH(LOCAL_SUB, __builtin_sub_overflow, -)
    LOCAL_ARITH(LOCAL_MUL, __builtin_mul_overflow, *)
#define LL_ADD_STORE_OP(name, tail) \
    TARGET(name) { \
        value a = locals[ARG], b = locals[NEXT_ARG()], r; \
        NUM_FAST(a, b, __builtin_add_overflow, +, r, L_LOAD_LOCAL); \
        SETV(locals[ip[2].arg], r); \
        SKIP_FUSED(name); \
        tail; \
        DISPATCH(); \
    }
    LL_ADD_STORE_OP(LL_ADD_STORE, NO_TAIL)
    LL_ADD_STORE_OP(LL_ADD_STORE_LOOP, LOOP_TAIL)
    TARGET(LOCAL_ADD_STORE) {
        value a = sp[-1], b = locals[ARG], r;
        NUM_FAST(a, b, __builtin_add_overflow, +, r, L_LOAD_LOCAL);
        SETV(locals[ip[1].arg], r);
        sp--;
        SKIP_FUSED(LOCAL_ADD_STORE);
        DISPATCH();
    }
    TARGET(FOR_RANGE_STORE) {
        /* x = next(it) for a range counting up, stored straight into the local */
        vm_iter *it = (vm_iter *)sp[-1].u.o;
        if (UNLIKELY(sp[-1].tag != T_ITER || it->seq.tag != T_NONE || it->step <= 0))
            goto L_FOR_ITER;
        if (it->pos < it->stop) {
            locals[NEXT_ARG()] = V_INT(it->pos);
            RANGE_STEP(it);
            SKIP_FUSED(FOR_RANGE_STORE);
            DISPATCH();
        }
        sp--;
        JUMP_BY(ip[-1].arg);    /* FOR_ITER's own jump, from past FOR_ITER */
        DISPATCH();
    }
    TARGET(LL_GET_ITEM) {
        value c = locals[ARG], k = locals[NEXT_ARG()];
        if (UNLIKELY(!LIST_INDEX_OK(c, k)))
            goto L_LOAD_LOCAL;
        value v = AS_LIST(c)->items[k.u.i];
        PUSH(v);
        SKIP_FUSED(LL_GET_ITEM);
        DISPATCH();
    }
    TARGET(LL_CONST_SET_ITEM) {
        value c = locals[ARG], k = locals[NEXT_ARG()];
        if (UNLIKELY(!LIST_INDEX_OK(c, k)))
            goto L_LOAD_LOCAL;
        SETV(AS_LIST(c)->items[k.u.i], CO->consts[ip[1].arg]);
        SKIP_FUSED(LL_CONST_SET_ITEM);
        DISPATCH();
    }
    TARGET(LOCAL_MOVE) {
        value v = locals[ARG];
        if (UNLIKELY(v.tag == T_UNDEF))
            goto L_LOAD_LOCAL;
        SETV(locals[NEXT_ARG()], v);
        SKIP_FUSED(LOCAL_MOVE);
        DISPATCH();
    }
    TARGET(LOAD_LOCAL2) {
        value v = locals[ARG], w = locals[NEXT_ARG()];
        if (UNLIKELY(v.tag == T_UNDEF || w.tag == T_UNDEF))
            goto L_LOAD_LOCAL;
        SETV(sp[0], v);
        SETV(sp[1], w);
        sp += 2;
        SKIP_FUSED(LOAD_LOCAL2);
        DISPATCH();
    }
    TARGET(LOAD_LOCAL_INT) {
        value v = locals[ARG];
        if (UNLIKELY(v.tag == T_UNDEF))
            goto L_LOAD_LOCAL;
        SETV(sp[0], v);
        sp[1] = V_INT(ip[0].arg);
        sp += 2;
        SKIP_FUSED(LOAD_LOCAL_INT);
        DISPATCH();
    }
    TARGET(LOAD_GLOBAL_LOCAL) {
        value v = *(value *)ip[-1].aux, w = locals[NEXT_ARG()];
        if (UNLIKELY(v.tag == T_UNDEF || w.tag == T_UNDEF))
            goto L_LOAD_GLOBAL;
        SETV(sp[0], v);
        SETV(sp[1], w);
        sp += 2;
        SKIP_FUSED(LOAD_GLOBAL_LOCAL);
        DISPATCH();
    }
    TARGET(GLOBAL_LOCAL_CALL) {
        /* g(x): the function and its argument go on the stack and straight into CALL's
         * code, with the function still in a register.  For a CALL of more than one
         * argument the global is not the callee: LOAD_GLOBAL alone, as off the fast path. */
        value v = *(value *)ip[-1].aux, w = locals[NEXT_ARG()];
        if (UNLIKELY(v.tag == T_UNDEF || w.tag == T_UNDEF || ip[1].arg != 1))
            goto L_LOAD_GLOBAL;
        SETV(sp[0], v);
        SETV(sp[1], w);
        sp += 2;
        SKIP_FUSED(GLOBAL_LOCAL_CALL);
        args = sp - 1;
        fv = v;
        goto do_call;
    }
    TARGET(LOCAL_INT_CALL) {
        /* the last two arguments, a local and an int, go on the stack and into CALL's code */
        value v = locals[ARG];
        if (UNLIKELY(v.tag == T_UNDEF))
            goto L_LOAD_LOCAL;
        SETV(sp[0], v);
        sp[1] = V_INT(ip[0].arg);
        sp += 2;
        SKIP_FUSED(LOCAL_INT_CALL);
        args = sp - ARG;        /* ip is past the CALL: ARG is its count */
        fv = args[-1];
        goto do_call;
    }
/* g(x OP k), the recursive call's shape (fib(n - 1)): as GLOBAL_LOCAL_CALL with the argument
 * computed; off the fast path (an int that overflows, not an int, CALL of more than one
 * argument) LOAD_GLOBAL alone. */
#define GLOBAL_LOCAL_INT_CALL(name, builtin) \
    TARGET(name) { \
        value v = *(value *)ip[-1].aux, w = locals[NEXT_ARG()]; \
        int64_t r; \
        if (UNLIKELY(v.tag == T_UNDEF || w.tag != T_INT || ip[3].arg != 1 || \
                     builtin(w.u.i, (int64_t)ip[1].arg, &r))) \
            goto L_LOAD_GLOBAL; \
        SETV(sp[0], v); \
        sp[1] = V_INT(r); \
        sp += 2; \
        SKIP_FUSED(name); \
        args = sp - 1; \
        fv = v; \
        goto do_call; \
    }
    GLOBAL_LOCAL_INT_CALL(GLOBAL_LOCAL_SUB_INT_CALL, __builtin_sub_overflow)
    GLOBAL_LOCAL_INT_CALL(GLOBAL_LOCAL_ADD_INT_CALL, __builtin_add_overflow)
    TARGET(STORE_LOAD_LOCAL) {
        SETV(locals[ARG], sp[-1]);
        value w = locals[NEXT_ARG()];
        if (UNLIKELY(w.tag == T_UNDEF)) {
            sp--;
            DISPATCH();
        }
        SETV(sp[-1], w);
        SKIP_FUSED(STORE_LOAD_LOCAL);
        DISPATCH();
    }
#define TOS_INT_ARITH(name, builtin) \
    TARGET(name) { \
        value a = sp[-1]; \
        int64_t r; \
        if (UNLIKELY(a.tag != T_INT || builtin(a.u.i, (int64_t)ip[-1].arg, &r))) \
            goto L_LOAD_INT; \
        sp[-1].u.i = r; \
        SKIP_FUSED(name); \
        DISPATCH(); \
    }
    TOS_INT_ARITH(INT_ADD, __builtin_add_overflow)
    TOS_INT_ARITH(INT_SUB, __builtin_sub_overflow)
    TARGET(INT_MOD) {
        value a = sp[-1];
        int64_t m = (int64_t)ip[-1].arg;
        if (UNLIKELY(a.tag != T_INT || m <= 0))
            goto L_LOAD_INT;
        sp[-1].u.i = INT_MOD_POS(a.u.i, m);
        SKIP_FUSED(INT_MOD);
        DISPATCH();
    }
    TARGET(LOCAL_MOD) {
        value a = sp[-1], b = locals[ARG];
        if (UNLIKELY(a.tag != T_INT || b.tag != T_INT || b.u.i <= 0))
            goto L_LOAD_LOCAL;
        sp[-1].u.i = INT_MOD_POS(a.u.i, b.u.i);
        SKIP_FUSED(LOCAL_MOD);
        DISPATCH();
    }
#define INT_ADD_STORE_OP(name, tail) \
    TARGET(name) { \
        value a = sp[-1]; \
        int64_t r; \
        if (UNLIKELY(a.tag != T_INT || __builtin_add_overflow(a.u.i, (int64_t)ip[-1].arg, &r))) \
            goto L_LOAD_INT; \
        locals[ip[1].arg] = V_INT(r); \
        sp--; \
        SKIP_FUSED(name); \
        tail; \
        DISPATCH(); \
    }
    INT_ADD_STORE_OP(INT_ADD_STORE, NO_TAIL)
    INT_ADD_STORE_OP(INT_ADD_STORE_LOOP, LOOP_TAIL)
    TARGET(ADD_STORE_LOCAL) {
        value b = sp[-1], a = sp[-2], r;
        NUM_FAST(a, b, __builtin_add_overflow, +, r, L_ADD);
        SETV(locals[NEXT_ARG()], r);
        sp -= 2;
        SKIP_FUSED(ADD_STORE_LOCAL);
        DISPATCH();
    }
    TARGET(RETURN_LOCAL) {
        rv = locals[ARG];
        if (UNLIKELY(rv.tag == T_UNDEF))
            goto L_LOAD_LOCAL;
        SKIP_FUSED(RETURN_LOCAL);
        DO_RETURN();
    }
/* c = a cop b for two ints or two floats; else `slow`. */
#define NUM_CMP(a, b, cop, c, slow) \
    do { \
        if (LIKELY((a).tag == T_INT && (b).tag == T_INT)) \
            c = (a).u.i cop (b).u.i; \
        else if ((a).tag == T_FLOAT && (b).tag == T_FLOAT) \
            c = (a).u.f cop (b).u.f; \
        else \
            goto slow; \
    } while (0)
#define CMP_JUMP(name, first, cop, jump_when) \
    TARGET(name) { \
        value b = sp[-1], a = sp[-2]; \
        bool c; \
        NUM_CMP(a, b, cop, c, L_##first); \
        sp -= 2; \
        SKIP_FUSED(name); \
        if (c == (jump_when)) \
            JUMP_BY(ip[-1].arg); \
        DISPATCH(); \
    }
#define CONST_CMP_JUMP(name, cop, jump_when) \
    TARGET(name) { \
        value a = sp[-1], b = CO->consts[ARG]; \
        bool c; \
        NUM_CMP(a, b, cop, c, L_LOAD_CONST); \
        sp--; \
        SKIP_FUSED(name); \
        if (c == (jump_when)) \
            JUMP_BY(ip[-1].arg); \
        DISPATCH(); \
    }
    CONST_CMP_JUMP(CONST_LT_JUMP_IF_FALSE, <, 0)
    CONST_CMP_JUMP(CONST_GT_JUMP_IF_TRUE, >, 1)
    CMP_JUMP(LT_JUMP_IF_FALSE, LT, <, 0)
    CMP_JUMP(LE_JUMP_IF_FALSE, LE, <=, 0)
    CMP_JUMP(GT_JUMP_IF_FALSE, GT, >, 0)
    CMP_JUMP(GE_JUMP_IF_FALSE, GE, >=, 0)
    CMP_JUMP(LT_JUMP_IF_TRUE, LT, <, 1)
    CMP_JUMP(GT_JUMP_IF_TRUE, GT, >, 1)
#endif

#if !USE_COMPUTED_GOTO
    default:
        RT_FATAL("unverified opcode");
    }
#endif

error:
    /* t->exc is set; ip points past the failing instruction of the innermost frame. */
    vm_exc_add_tb(t, AS_EXC(t->exc), CO, pc_before(CO, ip));
unwind:
    t->frame = frame;
    for (;;) {
        frame->ip = ip;
        t->base.stats.bytecodes += nexec;   /* the limits count a loop through a handler */
        nexec = 0;
        if (unwind_frame(t, frame)) {
            ip = frame->ip;         /* not LOAD_FRAME: frame and locals are unchanged, and */
            sp = frame->sp;         /* reloading them costs the loop a register (a spill) */
            DISPATCH();
        }
        int from_c = frame->flags & FR_FROM_C;
        vm_frame_pop(t);
        if (from_c)
            break;
        LOAD_FRAME();
        vm_exc_add_tb(t, AS_EXC(t->exc), CO, pc_before(CO, ip));
    }
    t->base.stats.bytecodes += nexec;
    t->c_depth--;
    return -1;

leave:
    t->base.stats.bytecodes += nexec;
    t->c_depth--;
    return 0;
}
