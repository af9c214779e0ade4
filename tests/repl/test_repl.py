#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The REPL's tests: drive the real gilvm binary through a pty with pexpect (TERM=dumb, HOME
a fresh temporary directory).  Run by tests/run-repl:

    /usr/bin/python3 tests/repl/test_repl.py GILVM [TEST_NAME...]

Prints one line per test and a last line "repl: N passed, M failed"; exits 1 on a failure.
Timeouts are generous (the machine may be loaded); nothing here asserts a time."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import pexpect

GILVM = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/gilvm")
VARIANT = os.environ.get("VARIANT", "release")
TIMEOUT = 10 * (3 if VARIANT in ("asan", "tsan", "debug") else 1)
PROMPT = "gilvm> "
MORE = "...... "

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def default_signals():
    """Run in the child before exec: a suite started in the background (`make test &`) has
    SIGINT and SIGQUIT ignored, gilvm would inherit that, and Ctrl-C could not interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class Session:
    """One interactive gilvm under a pty."""

    def __init__(self, home, args=(), env=None, home_unset=False):
        e = {k: v for k, v in os.environ.items() if k not in ("HOME", "INPUTRC")}
        e.update(TERM="dumb", INPUTRC="/dev/null")
        if not home_unset:
            e["HOME"] = home
        if env:
            e.update(env)
        self.log = []
        self.c = pexpect.spawn(GILVM, list(args), env=e, encoding="utf-8",
                               codec_errors="replace", timeout=TIMEOUT, dimensions=(24, 200),
                               preexec_fn=default_signals)
        self.c.logfile_read = self
        self.c.delaybeforesend = 0.02

    # pexpect logfile protocol: keep a transcript for failure reports
    def write(self, s):
        self.log.append(s)

    def flush(self):
        pass

    def transcript(self):
        return "".join(self.log)

    def expect(self, s):
        self.c.expect_exact(s)

    def prompt(self):
        self.c.expect_exact(PROMPT)

    def more(self):
        self.c.expect_exact(MORE)

    def line(self, text, expect=None):
        """Sends a line; waits for `expect` (if given) and then the next primary prompt."""
        self.c.sendline(text)
        if expect is not None:
            self.c.expect_exact(expect)
        self.prompt()

    def block_line(self, text):
        """Sends a line that continues a block; waits for the continuation prompt."""
        self.c.sendline(text)
        self.more()

    def eof(self):
        self.c.expect(pexpect.EOF)
        self.c.close()
        return self.c.exitstatus, self.c.signalstatus

    def close(self):
        if self.c.isalive():
            self.c.terminate(force=True)


class Ctx:
    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="gilvm-repl-")
        self.sessions = []

    def session(self, *args, **kw):
        s = Session(self.home, *args, **kw)
        self.sessions.append(s)
        s.prompt()
        return s

    def cleanup(self):
        for s in self.sessions:
            s.close()
        shutil.rmtree(self.home, ignore_errors=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def exited(s, want=0):
    status, sig = s.eof()
    if sig == signal.SIGINT:
        raise AssertionError("gilvm died of SIGINT (is the runtime's SIGINT handler in?)")
    check(status == want, "exit status %r (signal %r), expected %r" % (status, sig, want))


def interrupt_running(s):
    """Ctrl-C while the line just sent runs: KeyboardInterrupt, then the prompt again (a
    session that ends instead fails in exited)."""
    time.sleep(0.5)                             # let it start; nothing depends on how long
    s.c.sendcontrol("c")
    if s.c.expect_exact(["KeyboardInterrupt", pexpect.EOF]) == 1:
        exited(s, 0)                            # reports a death by SIGINT
    s.prompt()


# ---- the stack and basic lines ----

@test
def stack_shown_after_each_line(x):
    s = x.session()
    s.line("LOAD_INT 1", "[1]\r\n")
    s.line('LOAD_CONST "a"', "[1, 'a']\r\n")
    s.line("ADD", "TypeError")                  # fails: the stack stays as it was
    s.line(":stack", "1  str       'a'")
    s.line("BUILD_LIST 2", "[[1, 'a']]\r\n")
    s.line("POP", "[]\r\n")                     # emptied by this line: shown once
    s.c.sendline("NOP")
    s.prompt()
    check("[]" not in s.c.before, "an empty stack is not shown again: %r" % s.c.before)
    s.c.sendeof()
    exited(s, 0)


@test
def edit_line_with_control_keys(x):
    s = x.session()
    s.c.send("OAD_INT 12")
    s.c.sendcontrol("a")                        # to the start: insert the missing L
    s.c.send("L")
    s.c.sendcontrol("e")                        # to the end, one left, insert 3
    s.c.send("\x1b[D")
    s.c.send("3")
    s.c.send("\r")
    s.expect("[132]\r\n")
    s.prompt()
    s.c.send("LOAD_INT 77")
    s.c.sendcontrol("b")                        # back one, delete it, add 8 at the end
    s.c.sendcontrol("d")
    s.c.sendcontrol("e")
    s.c.send("8\r")
    s.expect("[132, 78]\r\n")
    s.prompt()
    s.c.sendeof()
    exited(s, 0)


# ---- history ----

@test
def history_across_sessions(x):
    s = x.session()
    s.line("LOAD_INT 4242", "[4242]\r\n")
    s.line("LOAD_INT 17", "[4242, 17]\r\n")
    s.c.sendline(":quit")
    exited(s, 0)
    hist = os.path.join(x.home, ".gilvm_history")
    check(os.path.exists(hist), "no history file written")
    with open(hist) as f:
        lines = f.read().splitlines()
    check("LOAD_INT 4242" in lines, "history file lacks the line: %r" % lines)
    s = x.session()
    s.c.send("\x1b[A")                          # up: the last line, :quit
    s.c.sendcontrol("p")                        # ctrl-p: LOAD_INT 17
    s.c.sendcontrol("p")                        # LOAD_INT 4242
    s.c.send("\r")
    s.expect("[4242]\r\n")
    s.prompt()
    s.c.send("\x1b[A")                          # the recalled line again
    s.c.send("\r")
    s.expect("[4242, 4242]\r\n")
    s.prompt()
    s.c.sendeof()
    exited(s, 0)


@test
def history_file_bounded(x):
    hist = os.path.join(x.home, ".gilvm_history")
    with open(hist, "w") as f:
        for i in range(1500):
            f.write("LOAD_INT %d\n" % i)
    s = x.session()
    s.c.send("\x1b[A\r")                        # the newest line of the file
    s.expect("[1499]\r\n")
    s.prompt()
    s.line("LOAD_INT 123456", "[1499, 123456]\r\n")
    s.c.sendeof()
    exited(s, 0)
    with open(hist) as f:
        lines = f.read().splitlines()
    check(len(lines) <= 1000, "history file has %d lines" % len(lines))
    check(lines[-1] == "LOAD_INT 123456", "last history line %r" % lines[-1:])


@test
def history_without_home_is_quiet(x):
    for kw in ({"home_unset": True}, {"env": {"HOME": os.path.join(x.home, "no", "such")}}):
        s = x.session(**kw)
        s.line("LOAD_INT 5", "[5]\r\n")
        s.line("LOAD_INT 6", "[5, 6]\r\n")
        s.c.sendeof()
        exited(s, 0)
        out = s.transcript().lower()
        check("history" not in out and "error" not in out and "no such" not in out,
              "unexpected message: %r" % s.transcript())
    check(not os.path.exists(os.path.join(x.home, "no")), "history written somewhere")


# ---- completion ----

@test
def complete_opcode(x):
    s = x.session()
    s.c.send("LOAD_CO\t")
    s.expect("LOAD_CONST ")
    s.c.send('"done"\r')
    s.expect("['done']\r\n")
    s.prompt()
    s.c.send("load_i\t")                        # lower case completes to the mnemonic
    s.expect("LOAD_INT ")
    s.c.send("5\r")
    s.expect("['done', 5]\r\n")
    s.prompt()
    s.c.send("LOAD_\t\t")                       # ambiguous: the second tab lists them
    s.expect("LOAD_GLOBAL")
    s.expect("LOAD_NONE")
    s.c.sendcontrol("u")
    s.c.send("\r")
    s.prompt()                                  # may be the one the listing redrew: then
    s.c.sendeof()                               # Ctrl-D comes while the empty line is taken
    exited(s, 0)


@test
def complete_global_name(x):
    s = x.session()
    s.line("LOAD_INT 31", "[31]\r\n")
    s.line("STORE_GLOBAL very_long_global_name", "[]\r\n")
    s.c.send("LOAD_GLOBAL very_lo\t")
    s.expect("very_long_global_name ")
    s.c.send("\r")
    s.expect("[31]\r\n")
    s.prompt()
    s.c.send("LOAD_GLOBAL isinst\t\r")          # builtins are globals too
    s.expect("[31, <")
    s.prompt()
    s.c.sendeof()
    exited(s, 0)


@test
def complete_meta_command(x):
    s = x.session()
    s.c.send(":thr\t")
    s.expect(":threads ")
    s.c.send("\r")
    s.expect("started by")
    s.prompt()
    s.c.send(".fu\t")                           # directives complete too
    s.expect(".func ")
    s.c.sendcontrol("u")
    s.c.send("\r")
    s.prompt()
    s.c.sendeof()
    exited(s, 0)


# ---- blocks ----

@test
def multiline_function(x):
    s = x.session()
    s.block_line(".func square(n)")
    s.block_line("    LOAD_LOCAL n")
    s.block_line("")                            # empty lines inside .func are kept
    s.block_line("    LOAD_LOCAL n")
    s.block_line("    MUL")
    s.c.sendline("    RETURN")
    s.more()
    s.c.sendline(".end")
    s.prompt()                                  # .end closes the block: back to the prompt
    s.line("LOAD_GLOBAL square", "[<function square>]\r\n")
    s.line("LOAD_INT 12", "\r\n")
    s.line("CALL 1", "[144]\r\n")
    s.line(":dis square", ".func square(n)")
    s.c.sendeof()
    exited(s, 0)


@test
def labels_and_jumps_in_a_block(x):
    s = x.session()
    s.line("LOAD_INT 0", "[0]\r\n")
    s.block_line("top:")
    for l in ("LOAD_INT 1", "ADD", "DUP", "LOAD_INT 5", "LT", "POP_JUMP_IF_FALSE done",
              "JUMP_BACKWARD top", "done:"):
        s.block_line("    " + l)
    s.c.sendline("")                            # an empty line runs the block
    s.expect("[5]\r\n")
    s.prompt()
    s.c.sendeof()
    exited(s, 0)


@test
def try_block_at_top_level(x):
    s = x.session()
    s.block_line(".try handler")
    s.block_line("LOAD_INT 1")
    s.block_line("LOAD_INT 0")
    s.block_line("FLOORDIV")
    s.block_line(".end_try")
    s.block_line("JUMP_FORWARD after")
    s.block_line("handler:")
    s.block_line("PUSH_EXC_INFO")
    s.block_line("POP")
    s.block_line("POP_EXCEPT")
    s.block_line('LOAD_CONST "caught"')
    s.block_line("after:")
    s.c.sendline("")
    s.expect("['caught']\r\n")
    s.prompt()
    s.c.sendeof()
    exited(s, 0)


# ---- errors keep the session ----

@test
def long_value_abbreviated(x):
    # The stack display shows at most 200 characters of a value, reprlib-style: the head,
    # "...", the tail; short values and :stack stay whole.
    s = x.session()
    s.line("LOAD_INT 7", "[7]\r\n")
    r = "[" + ", ".join(map(str, range(10000))) + "]"
    want = "[7, " + r[:98] + "..." + r[-99:] + "]\r\n"
    s.line("LOAD_GLOBAL list", "<")
    s.line("LOAD_GLOBAL range", "<")
    s.line("LOAD_INT 10000", "10000]\r\n")
    s.line("CALL 1", "\r\n")
    s.c.sendline("CALL 1")
    s.expect("[7, [0, 1, ")
    s.prompt()
    line = "[7, [0, 1, " + s.c.before.split("\r\n")[0] + "\r\n"
    check(line == want, "abbreviated list: %r" % line[:400])
    s.line("POP", "[7]\r\n")
    s.line('LOAD_CONST "\u00e9"', "[7, '\u00e9']\r\n")    # 2-byte characters
    s.line("LOAD_INT 300", "300]\r\n")
    s.c.sendline("MUL")
    s.expect("[7, '")
    s.prompt()
    line = s.c.before.split("\r\n")[0]
    check("..." in line and len(line) < 210 and "\ufffd" not in line and line.endswith("\u00e9']"),
          "abbreviated str: %r" % line)
    s.line(":stack", "\u00e9" * 300 + "'   <- top")      # :stack shows the whole value
    s.c.sendeof()
    exited(s, 0)


@test
def errors_keep_the_session(x):
    s = x.session()
    s.line("LOAD_INT 1", "[1]\r\n")
    s.line("STORE_GLOBAL g", "[]\r\n")
    s.line("LOAD_INT 2", "[2]\r\n")
    s.line("LOAD_GLOBAL nosuch", "NameError: name 'nosuch' is not defined")
    s.line("BOGUS 1", "<input-")                # an assembly error names input and column
    s.line("LOAD_INT 0", "[2, 0]\r\n")
    s.line("FLOORDIV", "ZeroDivisionError")     # consumed its operands, then failed ...
    s.line(":stack", "1  int       0")          # ... the stack is as before the line
    s.line("POP", "[2]\r\n")
    s.line("LOAD_GLOBAL g", "[2, 1]\r\n")
    s.c.sendeof()
    exited(s, 0)


@test
def stack_survives_collection_after_error(x):
    s = x.session()
    s.block_line(".func nop()")
    s.block_line("LOAD_NONE")
    s.block_line("RETURN")
    s.c.sendline(".end")
    s.prompt()
    s.line('LOAD_CONST "kept"', "['kept']\r\n")
    s.line("LOAD_INT 3", "\r\n")
    s.line("BUILD_LIST 2", "[['kept', 3]]\r\n")
    # One block: pop the list, collect (at nop's RESUME poll), then fail.
    s.block_line("start:")
    s.block_line("POP")
    s.block_line("LOAD_GLOBAL gc_collect")
    s.block_line("CALL 0")
    s.block_line("POP")
    s.block_line("LOAD_GLOBAL nop")
    s.block_line("CALL 0")
    s.block_line("POP")
    s.block_line("LOAD_GLOBAL not_defined_here")
    s.c.sendline("")
    s.expect("NameError")
    s.prompt()
    s.line(":stack", "0  list      ['kept', 3]")
    s.line("LOAD_GLOBAL gc_count", "\r\n")
    s.line("CALL 0", "[['kept', 3], ")
    s.c.sendeof()
    exited(s, 0)


# ---- Ctrl-C and Ctrl-D ----

@test
def ctrl_c_interrupts_running_loop(x):
    s = x.session()
    s.line("LOAD_INT 11", "[11]\r\n")
    s.line("LOAD_INT 1", "[11, 1]\r\n")
    s.line("STORE_GLOBAL kept", "[11]\r\n")
    s.block_line("spin: JUMP_BACKWARD spin")
    s.c.sendline("")
    interrupt_running(s)
    s.line("LOAD_GLOBAL kept", "[11, 1]\r\n")   # stack and globals intact
    # A second time, in a native wait (sleep) rather than a bytecode loop.
    s.line("LOAD_GLOBAL sleep", "\r\n")
    s.line("LOAD_INT 100", "\r\n")
    s.c.sendline("CALL 1")
    interrupt_running(s)
    s.line(":stack", "3  int       100")
    s.c.sendeof()
    exited(s, 0)


@test
def ctrl_c_at_prompt_clears_line(x):
    s = x.session()
    s.c.send("LOAD_INT 5")
    s.c.sendcontrol("c")
    s.expect("^C")
    s.prompt()
    s.line("LOAD_INT 6", "[6]\r\n")             # not "LOAD_INT 5LOAD_INT 6"
    s.block_line(".func half_typed()")          # in a block: back to the primary prompt
    s.c.sendcontrol("c")
    s.prompt()
    s.line("LOAD_INT 7", "[6, 7]\r\n")
    s.line("LOAD_GLOBAL half_typed", "NameError")
    s.c.sendeof()
    exited(s, 0)


@test
def ctrl_d_exits_zero(x):
    s = x.session()
    s.line("LOAD_INT 1", "[1]\r\n")
    s.c.sendeof()
    exited(s, 0)


@test
def ctrl_d_right_after_empty_line(x):
    s = x.session()
    s.c.send("\r")                              # no wait for the next prompt
    s.c.sendeof()
    exited(s, 0)


@test
def quit_and_system_exit(x):
    s = x.session()
    s.c.sendline(":quit 3")
    exited(s, 3)
    s = x.session()
    s.line("LOAD_GLOBAL exit", "\r\n")
    s.line("LOAD_INT 7", "\r\n")
    s.c.sendline("CALL 1")
    exited(s, 7)
    s = x.session()
    s.c.sendline(":q")                          # a unique prefix will do
    exited(s, 0)


@test
def python_exit_quit_help_words_give_hints(x):
    s = x.session()
    s.line("LOAD_INT 5", "[5]\r\n")
    for word in ("exit", "quit", "  exit()  ", "quit()"):
        s.c.sendline(word)
        s.expect("Use :quit or Ctrl-D (i.e. EOF) to exit\r\n")
        s.prompt()
        check("unknown opcode" not in s.c.before and "<input-" not in s.c.before,
              "%r: %r" % (word, s.c.before))
    for word in ("help", "help()"):
        s.c.sendline(word)
        s.expect("Type :help for help\r\n")
        s.prompt()
        check("unknown opcode" not in s.c.before, "%r: %r" % (word, s.c.before))
    s.block_line("exit:")                       # a label named exit still opens a block
    s.c.sendline("")
    s.prompt()
    s.line(":stack", "0  int       5")          # the hints left the stack alone
    s.c.sendeof()
    exited(s, 0)


# ---- meta-commands ----

@test
def meta_commands(x):
    s = x.session()
    s.line(":help", ":reset")
    s.line(":threads", "(this REPL)")
    s.line(":interps", "main")
    s.line(":stats", "bytecodes")
    s.line(":nosuch", "unknown command")
    s.line(":s", "ambiguous command")
    s.line("LOAD_INT 9", "[9]\r\n")
    s.line("STORE_GLOBAL mine", "[]\r\n")
    s.line("LOAD_INT 1", "[1]\r\n")
    s.line(":reset", "stack emptied")
    s.line(":stack", "(empty)")
    s.line("LOAD_GLOBAL mine", "NameError")
    s.line("LOAD_GLOBAL len", "[<")             # builtins survive :reset
    s.line(":dis len", "native")
    s.c.sendeof()
    exited(s, 0)


@test
def threads_run_while_prompt_waits(x):
    s = x.session()
    for l in (".func worker()", "top:", "LOAD_GLOBAL stop", "POP_JUMP_IF_TRUE out",
              "LOAD_GLOBAL count", "LOAD_INT 1", "ADD", "STORE_GLOBAL count",
              "LOAD_GLOBAL sleep", "LOAD_CONST 0.01", "CALL 1", "POP", "JUMP_BACKWARD top",
              "out:", "LOAD_NONE", "RETURN"):
        s.block_line(l)
    s.c.sendline(".end")
    s.prompt()
    s.line("LOAD_CONST False", "[False]\r\n")
    s.line("STORE_GLOBAL stop", "[]\r\n")
    s.line("LOAD_INT 0", "[0]\r\n")
    s.line("STORE_GLOBAL count", "[]\r\n")
    for l in ("LOAD_GLOBAL thread_start", "LOAD_GLOBAL worker", "BUILD_TUPLE 0"):
        s.line(l, "\r\n")
    s.line("CALL 2", "<")
    s.line(":threads", "threading")
    # The GIL is released at the prompt, so the worker counts while nothing is typed.
    deadline = time.time() + TIMEOUT
    seen = 0
    while seen < 3 and time.time() < deadline:
        time.sleep(0.2)
        s.c.sendline("LOAD_GLOBAL count")
        s.c.expect(r"\[<thread[^\r]*, (\d+)\]\r\n")
        seen = int(s.c.match.group(1))
        s.prompt()
        s.line("POP", "\r\n")
    check(seen >= 3, "the worker did not run while the prompt waited (count %d)" % seen)
    s.line("LOAD_CONST True", "\r\n")
    s.line("STORE_GLOBAL stop", "\r\n")
    s.line("LOAD_GLOBAL thread_join", "\r\n")   # the thread object is on the stack
    s.line("SWAP", "\r\n")
    s.line("CALL 1", "[None]\r\n")
    s.c.sendeof()
    exited(s, 0)


@test
def stats_are_fresh_for_a_busy_thread(x):
    """:stats shows a CPU-bound thread's bytecodes as of the command, not as of its last
    poll: taking the GIL for the command makes the thread flush its count."""
    s = x.session()
    for l in (".func worker()", "top:", "LOAD_GLOBAL stop", "POP_JUMP_IF_TRUE out",
              "JUMP_BACKWARD top", "out:", "LOAD_NONE", "RETURN"):
        s.block_line(l)
    s.c.sendline(".end")
    s.prompt()
    for l in ("LOAD_CONST False", "STORE_GLOBAL stop", "LOAD_GLOBAL thread_start",
              "LOAD_GLOBAL worker", "BUILD_TUPLE 0", "CALL 2", "POP"):
        s.line(l, "\r\n")
    counts = []
    deadline = time.time() + TIMEOUT
    while len(counts) < 3 and time.time() < deadline:
        time.sleep(0.2)
        s.c.sendline(":stats")
        s.c.expect(r"\r\n +2 yes +\d+ +\d+ +\d+ +(\d+) ")
        counts.append(int(s.c.match.group(1)))
        s.prompt()
    check(len(counts) == 3 and 0 < counts[0] < counts[1] < counts[2],
          "the busy thread's bytecodes did not grow between :stats: %r" % counts)
    s.line("LOAD_CONST True", "\r\n")
    s.line("STORE_GLOBAL stop", "\r\n")
    s.c.sendeof()
    exited(s, 0)


@test
def help_name_shows_the_sources(x):
    """:help NAME shows an instruction's stack picture as opcodes.def writes it and a
    builtin's signatures as docs/library.md shows them (tests/check-library-docs keeps the
    page and the natives rows in step)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "opcodes", "opcodes.def")) as f:
        pics = dict(re.findall(r'^OP\((\w+),.*"(.*)"\)$', f.read(), re.M))
    with open(os.path.join(root, "docs", "library.md")) as f:
        doc = f.read()
    s = x.session()
    for op in ("ADD", "CALL", "JUMP_BACKWARD"):
        s.line(":help " + op, op + "  (instruction; ")
        check(pics[op] in s.c.before + s.c.after, "no picture for " + op)
    for name in ("range", "queue_get", "lock_acquire"):
        sigs = [sig for h in re.findall(r"^###.*$", doc, re.M)
                for sig in re.findall(r"`(%s\(.*?\))`" % name, h)]
        check(sigs, "no signature of %s in docs/library.md" % name)
        s.c.sendline(":help " + name)
        s.c.expect_exact("\r\n".join(sigs) + "\r\n(built-in function")
        s.prompt()
    s.line(":help load_const", "LOAD_CONST  (instruction; operand: a literal)")
    s.line(":help KeyError", "class KeyError(LookupError)")
    s.line(":help :quit", ":quit [N]  leave the REPL")
    s.line(":help nosuch", "no instruction, command, builtin or global named 'nosuch'")
    s.c.sendeof()
    exited(s, 0)


@test
def huge_value_shows_its_head_only(x):
    """A repr far longer than the display (3 M ints, about 24 MB) is not made whole: the
    head, "...", and no tail; the next lines are as quick (the display's work is bounded)."""
    s = x.session()
    s.line("LOAD_GLOBAL list", "<")
    s.line("LOAD_GLOBAL range", "<")
    s.line("LOAD_INT 3000000", "3000000]\r\n")
    s.line("CALL 1", "\r\n")
    s.c.sendline("CALL 1")
    s.expect("[[0, 1, 2, ")
    s.prompt()
    line = "[[0, 1, 2, " + s.c.before.split("\r\n")[0]
    want = "[" + ("[" + ", ".join(map(str, range(100))))[:197] + "...]"
    check(line == want, "huge list: %r" % line[-120:])
    s.line("LOAD_INT 1", "..., 1]\r\n")
    s.c.sendeof()
    exited(s, 0)


@test
def load_file_keeps_definitions(x):
    path = os.path.join(x.home, "lib.gasm")
    with open(path, "w") as f:
        f.write(".func triple(n)\n    LOAD_LOCAL n\n    LOAD_INT 3\n    MUL\n    RETURN\n.end\n"
                "    LOAD_GLOBAL print\n    LOAD_CONST \"lib loaded\"\n    CALL 1\n    POP\n")
    s = x.session()
    s.line("LOAD_INT 1", "[1]\r\n")
    s.line(":load " + path, "lib loaded")
    s.line("LOAD_GLOBAL triple", "[1, <function triple>]\r\n")
    s.line("LOAD_INT 5", "\r\n")
    s.line("CALL 1", "[1, 15]\r\n")
    s.line(":load " + os.path.join(x.home, "missing.gasm"), "can't open")
    s.c.sendeof()
    exited(s, 0)


@test
def interp_switches_the_session(x):
    s = x.session()
    s.line("LOAD_GLOBAL interp_create", "\r\n")
    s.line("CALL 0", "[1]\r\n")
    s.line("STORE_GLOBAL sub", "[]\r\n")
    s.line("LOAD_INT 5", "[5]\r\n")
    s.line(":interp 1", "now in interpreter 1 (stack emptied)")
    s.line(":interps", "(this REPL)")
    s.line("LOAD_GLOBAL interp_current", "\r\n")
    s.line("CALL 0", "[1]\r\n")
    s.line("STORE_GLOBAL here", "[]\r\n")
    s.line("LOAD_GLOBAL sub", "NameError")          # main's global is not visible here
    s.line(":interp 1", "already in interpreter 1")
    s.line(":interp 7", "unrecognized interpreter ID 7 (back in interpreter 0)")
    s.line("LOAD_GLOBAL here", "NameError")         # nor interpreter 1's in main
    s.line(":interp 1", "now in interpreter 1")
    s.line("LOAD_GLOBAL here", "[1]\r\n")
    s.line(":interp 0", "now in interpreter 0")
    s.line("LOAD_GLOBAL interp_destroy", "\r\n")
    s.line("LOAD_GLOBAL sub", "\r\n")
    s.line("CALL 1", "[None]\r\n")
    s.line(":interp 1", "unrecognized interpreter ID 1")
    s.c.sendeof()
    exited(s, 0)


@test
def ctrl_c_in_sub_interpreter(x):
    # After :interp N the main OS thread runs in interpreter N's state; Ctrl-C still raises
    # KeyboardInterrupt there (the main thread's stand-in) and the session goes on in N.
    s = x.session()
    s.line("LOAD_GLOBAL interp_create", "\r\n")
    s.line("CALL 0", "[1]\r\n")
    s.line(":interp 1", "now in interpreter 1")
    s.line("LOAD_INT 7", "[7]\r\n")
    s.line("STORE_GLOBAL kept", "[]\r\n")
    s.block_line("spin: JUMP_BACKWARD spin")
    s.c.sendline("")
    interrupt_running(s)
    s.line("LOAD_GLOBAL kept", "[7]\r\n")      # still in interpreter 1, globals intact
    s.line("LOAD_GLOBAL sleep", "\r\n")        # and in a wait there
    s.line("LOAD_INT 100", "\r\n")
    s.c.sendline("CALL 1")
    interrupt_running(s)
    s.line(":interp 0", "now in interpreter 0")
    s.line("LOAD_INT 3", "[3]\r\n")            # no stale KeyboardInterrupt in main
    s.line("LOAD_GLOBAL len", "\r\n")
    s.c.sendeof()
    exited(s, 0)


@test
def interactive_after_file(x):
    path = os.path.join(x.home, "prog.gasm")
    with open(path, "w") as f:
        f.write("    LOAD_INT 40\n    STORE_GLOBAL answer\n")
    s = x.session(args=["-i", path])
    s.line("LOAD_GLOBAL answer", "[40]\r\n")
    s.c.sendeof()
    exited(s, 0)
    s = x.session(args=["repl"])
    s.line("LOAD_INT 2", "[2]\r\n")
    s.c.sendeof()
    exited(s, 0)


# ---- non-tty stdin ----

def pipe_run(text, args=()):
    env = dict(os.environ, TERM="dumb")
    p = subprocess.run([GILVM] + list(args), input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=TIMEOUT * 3)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@test
def script_mode_from_pipe(x):
    rc, out, err = pipe_run('LOAD_GLOBAL print\nLOAD_CONST "hi"\nCALL 1\nPOP\nLOAD_INT 3\n')
    check(rc == 0 and out == "hi\n" and err == "", "ok run: %r %r %r" % (rc, out, err))
    rc, out, err = pipe_run("")
    check(rc == 0 and out == "" and err == "", "empty run: %r %r %r" % (rc, out, err))
    rc, out, err = pipe_run('LOAD_GLOBAL print\nLOAD_CONST "before"\nCALL 1\nPOP\n'
                            'LOAD_GLOBAL nosuch\nLOAD_GLOBAL print\nLOAD_CONST "after"\nCALL 1\n')
    check(rc == 1 and out == "before\n" and "NameError" in err and "<stdin>" in err,
          "uncaught exception: %r %r %r" % (rc, out, err))
    rc, out, err = pipe_run("LOAD_INT 1\nBOGUS\n")
    check(rc == 65 and out == "" and "<stdin>:2:" in err, "bad input: %r %r %r" % (rc, out, err))
    rc, out, err = pipe_run("LOAD_GLOBAL exit\nLOAD_INT 4\nCALL 1\n")
    check(rc == 4, "SystemExit: %r %r %r" % (rc, out, err))
    rc, out, err = pipe_run("top:\nJUMP_FORWARD end\nend:\n:quit\n")
    check(rc == 65, "meta-commands are for terminals: %r %r %r" % (rc, out, err))


def main():
    names = sys.argv[2:]
    run = [t for t in TESTS if not names or t.__name__ in names]
    passed = failed = 0
    for t in run:
        x = Ctx()
        try:
            t(x)
            passed += 1
            print("ok    %s" % t.__name__, flush=True)
        except Exception as e:
            failed += 1
            print("FAIL  %s: %s" % (t.__name__, e if isinstance(e, AssertionError) else
                                    type(e).__name__), flush=True)
            if not isinstance(e, AssertionError):
                print("".join(traceback.format_exception_only(type(e), e)).strip()[:400])
            for s in x.sessions[-1:]:
                tail = s.transcript()[-1500:]
                print("  --- last session's output (tail) ---")
                print("  " + tail.replace("\r\n", "\n").replace("\n", "\n  "))
        finally:
            x.cleanup()
    print("repl: %d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
