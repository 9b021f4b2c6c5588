/*
 * repl.c — the interactive prompt of the `moongrad` program.
 *
 * It reads like lua.c 5.4: a line is first tried as "return <line>" (so an
 * expression prints its values: moongrad/pretty.lua makes their text, plain
 * tables pretty-printed like Torch7's th, tensors through their __tostring,
 * Variables with their name), else as a
 * statement; while the compiler says the statement is incomplete (its error
 * ends in "<eof>") more lines are read with the ">>" prompt (_PROMPT and
 * _PROMPT2 override the prompts). Errors print their message and traceback
 * and the loop goes on. Unlike lua.c, each input is compiled by the session
 * (stdlib/moongrad/repl_session.lua): its own chunk name "stdin[N]" (the
 * inputs of one paste share one, lines counted from the paste's first), its
 * text kept for AutoGraph, and its top-level locals kept for the next inputs.
 * While more input is already waiting (a paste, a piped file), a next line
 * that cannot stand alone but continues the statement joins it. `?name` is
 * help(name); `%time` times an input (or, alone, every input).
 *
 * On a terminal, lines come from libedit (BSD-licensed; its readline
 * interface, so the code reads like GNU readline's). Ctrl-C at the prompt drops
 * the line being typed, like Python's prompt, instead of killing the process:
 * our SIGINT handler only sets a flag, our readline input function turns the
 * interrupted read into a key bound to a "cancel line" command. Ctrl-C while
 * a statement runs is main.c's business (mgP_docall).
 * History persists in ~/.moongrad_history (MOONGRAD_HISTORY overrides; a
 * history file that cannot be written is ignored), one entry a line with its
 * newlines escaped, so a multi-line input is one entry (libedit's own format
 * would encode blanks), read and appended here with stdio. Tab completes
 * globals, the session's locals,
 * keywords and `a.b.` / `obj:` fields: the expression before the cursor is
 * walked through raw fields, metatables' __index tables, the `__methods`
 * table the tensor metatable carries (and the names in its `__fields` table,
 * the fields a `.` offers: shape, dtype, ndim, name...) and, where __index is
 * a function (the stdlib's classes, nn/class.lua), the class table the
 * metatable names in `__members`: its fields and the keys of its `getters`
 * (computed properties), then its parents through their metatables' __index
 * tables. Names starting with "_" are offered only once "_" is typed. No Lua
 * code runs while completing.
 * When stdin is not a terminal, lines are read plainly and no prompt is
 * written, so piped output stays clean.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <editline/readline.h>

#include <lauxlib.h>
#include <lua.h>

#include "repl.h"

#define REPL_PROMPT "> "
#define REPL_PROMPT2 ">> "
#define REPL_HISTMAX 1000
#define REPL_EOFMARK "<eof>"
#define REPL_DEPTH 16            /* __index chains followed when completing */

enum { REPL_EOF = 0, REPL_LINE = 1, REPL_CANCEL = 2 };   /* repl_read results */
enum { REPL_STOP = -1, REPL_CANCELLED = -2 };           /* repl_loadline beyond lua statuses */

static int repl_tty;                         /* stdin is a terminal: use readline */
static char repl_histfile[PATH_MAX];         /* "" = no history file */
static lua_State *repl_L;                    /* for the completion callback */

/* ---- reading lines --------------------------------------------------------------- */

static volatile sig_atomic_t repl_sigint;
static int repl_cancelled;

static void repl_onsigint(int sig) {
  (void)sig;
  repl_sigint = 1;
}

/* The line editor's input: read(2), with Ctrl-C (EINTR with the flag set)
 * ending the line as cancelled: the editor sees end of input and returns
 * NULL, and repl_rlread tells that from Ctrl-D by the flag. (libedit's
 * rl_bind_key cannot bind a function of ours to a key.) */
static int repl_getc(FILE *f) {
  for (;;) {
    unsigned char c;
    ssize_t n = read(fileno(f), &c, 1);
    if (n == 1) return c;
    if (n == 0 || errno != EINTR) return EOF;
    if (repl_sigint) {
      repl_sigint = 0;
      repl_cancelled = 1;
      return EOF;
    }
  }
}

/* One line from readline. Ctrl-C drops the line and returns REPL_CANCEL. */
static int repl_rlread(const char *prompt, char **out) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = repl_onsigint;             /* no SA_RESTART: read must see EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  repl_sigint = 0;
  repl_cancelled = 0;
  char *line = readline(prompt);
  sigaction(SIGINT, &old, NULL);
  if (repl_cancelled) {
    free(line);
    fputs("^C\n", stdout);  /* the typed line stays on screen, the prompt comes anew */
    fflush(stdout);
    return REPL_CANCEL;
  }
  *out = line;
  return line ? REPL_LINE : REPL_EOF;
}

static int repl_read(const char *prompt, char **out) {
  if (repl_tty) return repl_rlread(prompt, out);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  if (n < 0) {
    free(line);
    return REPL_EOF;
  }
  if (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
  if (n > 0 && line[n - 1] == '\r') line[--n] = '\0';   /* a CRLF file: Lua would count the \r as a line */
  *out = line;
  return REPL_LINE;
}

/* A line read ahead (the next line of a paste), not yet part of an input. */
static char *repl_ahead;
static int repl_wasahead;                    /* the last line read was the one read ahead */
static int repl_line = 1;                    /* where the next input starts in its paste */

/* Whether more input is waiting right now (a paste's next lines, a piped
 * file): poll(2) on stdin, which is unbuffered when not a terminal and read a
 * byte at a time by the line editor, so no waiting byte hides in a buffer. */
static int repl_waiting(void) {
  struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP));
}

/* Reads a line (the line read ahead first) and pushes it; returns a
 * repl_read result (pushes only lines). */
static int repl_pushline(lua_State *L, int first) {
  repl_wasahead = repl_ahead != NULL;
  if (repl_ahead) {
    lua_pushstring(L, repl_ahead);
    free(repl_ahead);
    repl_ahead = NULL;
    return REPL_LINE;
  }
  char prompt[128];
  const char *p = first ? REPL_PROMPT : REPL_PROMPT2;
  lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
  if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) p = lua_tostring(L, -1);
  snprintf(prompt, sizeof prompt, "%s", p);
  lua_pop(L, 1);
  fflush(stdout);
  char *line = NULL;
  int r = repl_read(prompt, &line);
  if (r == REPL_LINE) {
    lua_pushstring(L, line);
    free(line);
  }
  return r;
}

/* ---- history ------------------------------------------------------------------------ */

/* The file holds one entry a line after a header line; an entry's newlines
 * are written "\n" and its backslashes "\\", so a multi-line statement comes
 * back as one entry. A file without the header (written before entries could
 * span lines) is read one entry a line and converted when opened. */
#define REPL_HISTHEAD "#moongrad history 2: one entry a line, \\n a newline, \\\\ a backslash"

static char *repl_histlast;                  /* the last entry added (repeats are skipped) */

static void repl_history_put(FILE *f, const char *entry) {
  for (const char *c = entry; *c; c++) {
    if (*c == '\n') fputs("\\n", f);
    else if (*c == '\\') fputs("\\\\", f);
    else fputc(*c, f);
  }
  fputc('\n', f);
}

/* Decodes an encoded entry in place. */
static void repl_history_decode(char *s) {
  char *w = s;
  for (const char *r = s; *r; r++) {
    if (*r == '\\' && (r[1] == 'n' || r[1] == '\\')) {
      *w++ = r[1] == 'n' ? '\n' : '\\';
      r++;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
}

/* The entries of the history file, at most the last `max` (malloc'd);
 * *plain says the file has the old one-line-a-line format. */
static char **repl_history_lines(int max, int *count, int *plain) {
  *count = 0;
  *plain = 0;
  FILE *f = fopen(repl_histfile, "r");
  if (!f) return NULL;
  char **lines = calloc((size_t)max + 1, sizeof *lines), *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int total = 0, first = 1;
  while (lines && (n = getline(&line, &cap, f)) >= 0) {
    if (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
    if (first) {
      first = 0;
      *plain = strcmp(line, REPL_HISTHEAD) != 0;
      if (!*plain) continue;
    }
    if (n == 0) continue;
    if (!*plain) repl_history_decode(line);
    free(lines[total % max]);                /* a ring of the last max lines */
    lines[total % max] = strdup(line);
    total++;
  }
  free(line);
  fclose(f);
  if (!lines) return NULL;
  if (total > max) {                         /* unroll the ring: oldest first */
    char **ordered = calloc((size_t)max + 1, sizeof *ordered);
    for (int i = 0; ordered && i < max; i++) ordered[i] = lines[(total + i) % max];
    if (ordered) {
      free(lines);
      lines = ordered;
    }
  }
  *count = total < max ? total : max;
  return lines;
}

/* Writes the entries from `from` on as the whole file (beside it, then renamed). */
static void repl_history_write(char **lines, int from, int n) {
  char tmp[PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", repl_histfile);
  FILE *f = fopen(tmp, "w");
  if (f) fprintf(f, "%s\n", REPL_HISTHEAD);
  for (int i = from; f && i < n; i++) repl_history_put(f, lines[i]);
  if (f && fclose(f) == 0) rename(tmp, repl_histfile);
  else remove(tmp);
}

static void repl_history_open(void) {
  const char *path = getenv("MOONGRAD_HISTORY"), *home = getenv("HOME");
  if (path && *path) snprintf(repl_histfile, sizeof repl_histfile, "%s", path);
  else if (home && *home) snprintf(repl_histfile, sizeof repl_histfile, "%s/.moongrad_history", home);
  using_history();
  stifle_history(REPL_HISTMAX);
  if (!repl_histfile[0]) return;
  int n, plain;
  char **lines = repl_history_lines(REPL_HISTMAX, &n, &plain);
  if (lines && plain && n > 0) repl_history_write(lines, 0, n);   /* the old format, converted */
  for (int i = 0; lines && i < n; i++) {
    add_history(lines[i]);
    if (i == n - 1) repl_histlast = lines[i];   /* a recalled last entry is not stored twice */
    else free(lines[i]);
  }
  free(lines);
}

/* Adds an input (all its lines, one entry) to the history and to the file
 * now, so os.exit() or a killed terminal loses nothing. Repeats are not stored. */
static void repl_history_add(const char *entry) {
  if (!repl_tty || entry[strspn(entry, " \t\n")] == '\0') return;
  if (repl_histlast && strcmp(repl_histlast, entry) == 0) return;
  free(repl_histlast);
  repl_histlast = strdup(entry);
  add_history(entry);
  FILE *f = repl_histfile[0] ? fopen(repl_histfile, "a") : NULL;
  if (f) {                                    /* unwritable: ignored, as documented */
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) == 0) fprintf(f, "%s\n", REPL_HISTHEAD);
    repl_history_put(f, entry);
    fclose(f);
  }
}

/* Keeps the file to its last REPL_HISTMAX entries. */
static void repl_history_close(void) {
  free(repl_histlast);
  repl_histlast = NULL;
  if (!repl_histfile[0]) return;
  int n, plain;
  char **lines = repl_history_lines(REPL_HISTMAX + 1, &n, &plain);
  if (lines && n > REPL_HISTMAX) repl_history_write(lines, 1, n);
  for (int i = 0; lines && i < n; i++) free(lines[i]);
  free(lines);
}

/* ---- compiling an input ------------------------------------------------------------- */

enum { REPL_SYN_OK, REPL_SYN_MORE, REPL_SYN_ERROR };   /* repl_syntax results */

static int repl_session = LUA_NOREF;         /* registry ref of the moongrad.repl_session object */

/* Whether text parses as an expression or a statement (REPL_SYN_OK), is a
 * statement cut short (its error ends in "<eof>": REPL_SYN_MORE), or neither.
 * Only compiles; nothing is kept. */
static int repl_syntax(lua_State *L, const char *text) {
  const char *ret = lua_pushfstring(L, "return %s;", text);
  int status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
  lua_pop(L, 2);
  if (status == LUA_OK) return REPL_SYN_OK;
  status = luaL_loadbuffer(L, text, strlen(text), "=stdin");
  size_t len, n = sizeof REPL_EOFMARK - 1;
  const char *msg = lua_tolstring(L, -1, &len);
  int more = status == LUA_ERRSYNTAX && msg && len >= n && strcmp(msg + len - n, REPL_EOFMARK) == 0;
  lua_pop(L, 1);
  return status == LUA_OK ? REPL_SYN_OK : more ? REPL_SYN_MORE : REPL_SYN_ERROR;
}

/* Compiles an input through the session (top-level locals kept, a chunk name
 * of its own, or its paste's, with `line` its first line there; its text
 * registered for AutoGraph): pushes the function or the error message and
 * returns the load status. Without a session (its module
 * failed to load), a plain chunk of the globals. */
static int repl_compile(lua_State *L, const char *text, int line) {
  if (repl_session != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, repl_session);
    lua_getfield(L, -1, "load");
    lua_remove(L, -2);
    lua_pushstring(L, text);
    lua_pushinteger(L, line);
    if (lua_pcall(L, 2, 2, 0) != LUA_OK) return LUA_ERRSYNTAX;   /* the message is on the top */
    if (!lua_isnil(L, -2)) {
      lua_pop(L, 1);
      return LUA_OK;
    }
    lua_remove(L, -2);
    return LUA_ERRSYNTAX;
  }
  const char *ret = lua_pushfstring(L, "return %s;", text);
  int status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
  lua_remove(L, -2);
  if (status == LUA_OK) return status;
  lua_pop(L, 1);
  return luaL_loadbuffer(L, text, strlen(text), "=stdin");
}

/* Whether a line is a REPL command (`?name`, `%time ...`), never Lua: a pasted
 * `%time` line continues no expression (as `x % time` would). */
static int repl_command(const char *line) {
  const char *s = line + strspn(line, " \t");
  return *s == '?' || (strncmp(s, "%time", 5) == 0 && (s[5] == '\0' || s[5] == ' ' || s[5] == '\t'));
}

/* Reads one input, with the text of its first line on the top: more lines
 * while the statement is incomplete, and, while more input is already
 * waiting (a paste), the next lines that cannot stand alone but continue it
 * (a line starting with `:method(`, `..`, `and`, ...). A next line that can
 * stand alone stays read ahead as the next input, so each pasted statement
 * runs and prints as if typed. Leaves the whole text on the top; returns
 * REPL_LINE, or REPL_CANCEL on Ctrl-C (nothing left on the stack). */
static int repl_readinput(lua_State *L) {
  for (;;) {
    const char *text = lua_tostring(L, -1);
    int syn = repl_syntax(L, text);
    int r;
    if (syn == REPL_SYN_MORE) {
      r = repl_pushline(L, 0);
      if (r == REPL_EOF) return REPL_LINE;    /* ended mid-statement: compiling says so */
    } else if (syn == REPL_SYN_OK && (repl_ahead || repl_waiting())) {
      r = repl_pushline(L, 1);
      if (r == REPL_EOF) return REPL_LINE;
      if (r == REPL_LINE) {
        const char *next = lua_tostring(L, -1);
        const char *joined = lua_pushfstring(L, "%s\n%s", text, next);
        if (repl_command(next) || repl_syntax(L, next) != REPL_SYN_ERROR ||
            repl_syntax(L, joined) == REPL_SYN_ERROR) {
          repl_ahead = strdup(next);          /* the next input */
          lua_pop(L, 2);
          return REPL_LINE;
        }
        lua_replace(L, -3);
        lua_pop(L, 1);
        continue;
      }
    } else {
      return REPL_LINE;
    }
    if (r == REPL_CANCEL) {
      lua_pop(L, 1);
      return REPL_CANCEL;
    }
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
}

static int repl_timed;                       /* this input runs under %time */
static int repl_time_all;                    /* `%time` alone: every input is timed */

/* Reads and compiles one input: leaves the function (or the error message)
 * on the top. REPL_STOP at end of input, REPL_CANCELLED on Ctrl-C or when
 * there is nothing to run. Two prefixes no Lua statement starts with:
 * `?name` is help(name); `%time <input>` times the input, `%time` alone
 * times every input from then on (and again stops). */
static int repl_loadline(lua_State *L) {
  int r = repl_pushline(L, 1);
  if (r != REPL_LINE) return r == REPL_CANCEL ? REPL_CANCELLED : REPL_STOP;
  const char *line = lua_tostring(L, -1), *s = line + strspn(line, " \t");
  const char *prefix = "";
  repl_timed = repl_time_all;
  if (!repl_wasahead) repl_line = 1;          /* typed, or a paste's first line: a new chunk */
  int first = repl_line;
  repl_line++;
  if (*s == '?') {
    const char *name = s + 1 + strspn(s + 1, " \t");
    size_t n = strlen(name);
    while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t')) n--;
    repl_history_add(line);
    lua_pushfstring(L, "help(%s)", lua_pushlstring(L, name, n));
    lua_remove(L, -2);
    int status = repl_compile(L, lua_tostring(L, -1), first);
    lua_remove(L, -2);
    lua_remove(L, -2);                        /* the line */
    return status;
  }
  if (repl_command(s)) {
    const char *rest = s + 5 + strspn(s + 5, " \t");
    if (*rest == '\0') {
      repl_time_all = !repl_time_all;
      repl_history_add(line);
      printf(repl_time_all ? "%%time: every input is timed (%%time again stops)\n" : "%%time: off\n");
      lua_pop(L, 1);
      return REPL_CANCELLED;
    }
    repl_timed = 1;
    prefix = "%time ";
    lua_pushstring(L, rest);
    lua_remove(L, -2);
  }
  if (repl_readinput(L) == REPL_CANCEL) return REPL_CANCELLED;
  const char *text = lua_tostring(L, -1);
  for (const char *c = text; *c; c++) repl_line += *c == '\n';
  lua_pushfstring(L, "%s%s", prefix, text);
  repl_history_add(lua_tostring(L, -1));
  lua_pop(L, 1);
  int status = repl_compile(L, text, first);
  lua_remove(L, -2);                          /* the text */
  return status;
}

/* "time: 12.3 ms wall, 24.1 ms CPU" (CPU: every thread of the process), from
 * the clocks read before and after running the input (printing its value is
 * not counted). */
static void repl_timing(const struct timespec *t0, const struct timespec *t1, clock_t c0, clock_t c1) {
  double wall = (double)(t1->tv_sec - t0->tv_sec) + 1e-9 * (double)(t1->tv_nsec - t0->tv_nsec);
  double cpu = (double)(c1 - c0) / CLOCKS_PER_SEC;
  double unit = wall < 1 ? 1e3 : 1;
  const char *u = wall < 1 ? "ms" : "s";
  printf("time: %.*f %s wall, %.*f %s CPU\n", wall < 1 ? 2 : 3, wall * unit, u, wall < 1 ? 2 : 3, cpu * unit, u);
}

/* The session (moongrad.repl_session.new(_G)) in the registry; without it
 * (its module cannot load) inputs are plain chunks and locals do not persist. */
static void repl_opensession(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad.repl_session");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    lua_getfield(L, -1, "new");
    lua_pushglobaltable(L);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
      repl_session = luaL_ref(L, LUA_REGISTRYINDEX);
      lua_pop(L, 1);
      return;
    }
  }
  fprintf(stderr, "moongrad: the REPL session did not start (%s): locals do not persist\n",
          luaL_tolstring(L, -1, NULL));
  lua_pop(L, 2);
}

/* At the end of the session: its <close> locals are closed (last first), as
 * a script's are at its end; their errors are reported. */
static void repl_closesession(lua_State *L) {
  if (repl_session == LUA_NOREF) return;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, repl_session);
  lua_getfield(L, -1, "close");
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
  } else {
    for (lua_Integer i = 1; lua_istable(L, -1) && lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  fflush(stderr);
  luaL_unref(L, LUA_REGISTRYINDEX, repl_session);
  repl_session = LUA_NOREF;
  lua_settop(L, top);
}

/* Copies the raw fields of the table at `from` into the table at `to`. */
static void repl_copy(lua_State *L, int from, int to) {
  lua_pushnil(L);
  while (lua_next(L, from)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, to);
  }
}

/* Pushes what names mean at the prompt, for completion: a new table of the
 * globals overlaid with the session's locals (nil for those that hold nil,
 * hiding a global of their name; the environment's raw fields; the consts).
 * Raw reads only: no Lua code runs while completing. */
static void repl_pushscope(lua_State *L) {
  lua_newtable(L);
  int scope = lua_gettop(L);
  lua_pushglobaltable(L);
  repl_copy(L, scope + 1, scope);
  lua_settop(L, scope);
  if (repl_session == LUA_NOREF) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, repl_session);         /* scope + 1: the session */
  lua_pushliteral(L, "env");
  lua_rawget(L, scope + 1);                                /* scope + 2: its environment */
  if (lua_istable(L, scope + 2) && lua_getmetatable(L, scope + 2)) {   /* scope + 3 */
    lua_pushliteral(L, "declared");
    lua_rawget(L, scope + 3);                              /* scope + 4 */
    lua_pushliteral(L, "consts");
    lua_rawget(L, scope + 3);                              /* scope + 5 */
    if (lua_istable(L, scope + 4)) {
      lua_pushnil(L);
      while (lua_next(L, scope + 4)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, scope);
      }
    }
    repl_copy(L, scope + 2, scope);
    if (lua_istable(L, scope + 5)) repl_copy(L, scope + 5, scope);
  }
  lua_settop(L, scope);
}

/* ---- the loop ------------------------------------------------------------------------- */

static void repl_report(lua_State *L, int status) {
  if (status == LUA_OK) return;
  const char *msg = lua_tostring(L, -1);
  if (msg == NULL) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* Turns the values above `base` into the one string require("moongrad.pretty").line
 * makes of them (plain tables pretty-printed, Variables named); leaves the values
 * as they were when that module is missing or fails. */
static int repl_prettyline(lua_State *L) {
  int n = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad.pretty");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "line");
  lua_insert(L, 1);
  lua_pop(L, 1);                              /* the module */
  lua_call(L, n, 1);
  return 1;
}

/* Prints the values above `base` with the global print, as one line of text
 * from moongrad.pretty (the values themselves if that fails). */
static void repl_print(lua_State *L, int base) {
  int n = lua_gettop(L) - base;
  if (n <= 0) return;
  luaL_checkstack(L, LUA_MINSTACK + n, "too many results to print");
  lua_pushcfunction(L, repl_prettyline);
  for (int i = 1; i <= n; i++) lua_pushvalue(L, base + i);
  if (lua_pcall(L, n, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
    lua_replace(L, base + 1);                 /* the line replaces the values */
    lua_settop(L, base + 1);
  } else {
    lua_pop(L, 1);                            /* the error: print the values plainly */
  }
  lua_getglobal(L, "print");
  lua_insert(L, base + 1);
  if (lua_pcall(L, lua_gettop(L) - base - 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "error calling 'print' (%s)\n", lua_tostring(L, -1));
    fflush(stderr);
  }
}

static void repl_rlsetup(void);

void mgP_repl(lua_State *L) {
  int base = lua_gettop(L);
  struct sigaction sa, old;
  repl_L = L;
  repl_tty = isatty(STDIN_FILENO);
  if (repl_tty) {
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = repl_onsigint;            /* a Ctrl-C between statements is dropped */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    repl_rlsetup();
    repl_history_open();
    printf("Type help() for an introduction; Ctrl-D exits.\n");
  } else {
    setvbuf(stdin, NULL, _IONBF, 0);          /* repl_waiting polls the descriptor */
  }
  repl_opensession(L);
  mgP_interactive(1);
  for (;;) {
    lua_settop(L, base);
    int status = repl_loadline(L);
    if (status == REPL_STOP) break;
    if (status == REPL_CANCELLED) continue;
    struct timespec t0, t1;
    clock_t c0 = clock();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (status == LUA_OK) status = mgP_docall(L, 0, LUA_MULTRET);
    clock_t c1 = clock();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (status == LUA_OK) repl_print(L, base);
    else repl_report(L, status);
    if (repl_timed) repl_timing(&t0, &t1, c0, c1);
    fflush(stdout);
  }
  mgP_interactive(0);
  lua_settop(L, base);
  repl_closesession(L);
  free(repl_ahead);
  repl_ahead = NULL;
  if (repl_tty) {
    sigaction(SIGINT, &old, NULL);
    repl_history_close();
    fputs("\n", stdout);
  }
  fflush(stdout);
}

/* ---- completion ------------------------------------------------------------------------- */

static const char *const repl_keywords[] = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
    "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while", NULL};

static int repl_isident(const char *s, size_t n) {
  if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9')))
      return 0;
  return 1;
}

/* Pushes the table completion walks after the metatable on the top: its
 * __index when that is a table, else its `__members` table (a class whose
 * __index is a function); returns 0 (nothing pushed) when there is neither. */
static int repl_next(lua_State *L) {
  lua_pushliteral(L, "__index");
  if (lua_rawget(L, -2) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  lua_pushliteral(L, "__members");
  if (lua_rawget(L, -2) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  return 0;
}

/* Pushes field `name` of the value at idx, looking through raw fields,
 * metatables' __methods tables, __index tables and __members tables only
 * (getters are not run: a computed property completes no further); nil if
 * not found. */
static void repl_field(lua_State *L, int idx, const char *name, size_t len) {
  int top = lua_gettop(L), found = 0;
  lua_pushvalue(L, idx);
  for (int depth = 0; depth < REPL_DEPTH && !found; depth++) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushlstring(L, name, len);
      if (lua_rawget(L, -2) != LUA_TNIL) {
        found = 1;
        break;
      }
      lua_pop(L, 1);
    }
    if (!lua_getmetatable(L, -1)) break;
    lua_pushliteral(L, "__methods");
    if (lua_rawget(L, -2) == LUA_TTABLE) {
      lua_pushlstring(L, name, len);
      if (lua_rawget(L, -2) != LUA_TNIL) {
        found = 1;
        break;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!repl_next(L)) break;
    lua_replace(L, -3);                       /* the __index (__members) table is the next object */
    lua_pop(L, 1);
  }
  if (!found) lua_pushnil(L);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* Adds prefix..key to the set at `set` for each identifier key of the table
 * at idx starting with `part` (only functions when `methods`; names starting
 * with "_" only when `part` does). */
static void repl_addkeys(lua_State *L, int set, int idx, const char *prefix, const char *part, int methods) {
  size_t plen = strlen(part);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t klen;
    if (lua_type(L, -2) == LUA_TSTRING && (!methods || lua_type(L, -1) == LUA_TFUNCTION)) {
      const char *k = lua_tolstring(L, -2, &klen);
      if (klen >= plen && memcmp(k, part, plen) == 0 && repl_isident(k, klen) && (k[0] != '_' || part[0] == '_')) {
        lua_pushfstring(L, "%s%s", prefix, k);
        lua_pushboolean(L, 1);
        lua_rawset(L, set);
      }
    }
    lua_pop(L, 1);
  }
}

/* Adds the keys of the table field `name` of the table at idx (fields, not methods). */
static void repl_addsub(lua_State *L, int set, int idx, const char *name, const char *prefix, const char *part) {
  lua_pushstring(L, name);
  if (lua_rawget(L, idx) == LUA_TTABLE) repl_addkeys(L, set, lua_gettop(L), prefix, part, 0);
  lua_pop(L, 1);
}

/* The candidates from the value at idx, its __methods (and, after a ".", the
 * __fields they list), its __index tables and its class's __members, with
 * their getters after a "." . */
static void repl_addall(lua_State *L, int set, int idx, const char *prefix, const char *part, int methods) {
  int inclass = 0;
  lua_pushvalue(L, idx);
  for (int depth = 0; depth < REPL_DEPTH; depth++) {
    int obj = lua_gettop(L);
    if (lua_type(L, obj) == LUA_TTABLE) {
      repl_addkeys(L, set, obj, prefix, part, methods);
      if (inclass && !methods) repl_addsub(L, set, obj, "getters", prefix, part);
    }
    if (!lua_getmetatable(L, obj)) break;
    lua_pushliteral(L, "__methods");
    if (lua_rawget(L, -2) == LUA_TTABLE) {
      repl_addkeys(L, set, lua_gettop(L), prefix, part, methods);
      if (!methods) repl_addsub(L, set, lua_gettop(L), "__fields", prefix, part);
    }
    lua_pop(L, 1);
    lua_pushliteral(L, "__index");
    int plain = lua_rawget(L, -2) == LUA_TTABLE;
    lua_pop(L, 1);
    if (!plain) inclass = 1;
    if (!repl_next(L)) break;
    lua_replace(L, obj);
    lua_settop(L, obj);
  }
}

/* repl_gather(text): a set {candidate = true} of completions of text, the
 * word before the cursor ("mg.mat", "t:su", "pri"). Run in protected mode. */
static int repl_gather(lua_State *L) {
  size_t tlen;
  const char *text = luaL_checklstring(L, 1, &tlen);
  lua_newtable(L);
  int set = lua_gettop(L);
  const char *sep = NULL;
  for (const char *c = text; *c; c++)
    if (*c == '.' || *c == ':') sep = c;
  repl_pushscope(L);                          /* globals and the session's locals */
  if (sep == NULL) {
    repl_addall(L, set, lua_gettop(L), "", text, 0);
    for (int i = 0; repl_keywords[i]; i++)
      if (strncmp(repl_keywords[i], text, tlen) == 0) {
        lua_pushboolean(L, 1);
        lua_setfield(L, set, repl_keywords[i]);
      }
    lua_settop(L, set);
    return 1;
  }
  if (sep == text) {                          /* ".x" or ":x": nothing to walk */
    lua_settop(L, set);
    return 1;
  }
  for (const char *s = text; s < sep;) {      /* walk a.b.c up to the last separator */
    size_t n = strcspn(s, ".:");
    if (!repl_isident(s, n) || (s[n] == ':' && s + n != sep)) {
      lua_settop(L, set);
      return 1;
    }
    repl_field(L, -1, s, n);
    lua_remove(L, -2);
    s += n + 1;
  }
  lua_pushlstring(L, text, (size_t)(sep - text) + 1);
  if (!lua_isnil(L, -2)) repl_addall(L, set, lua_gettop(L) - 1, lua_tostring(L, -1), sep + 1, *sep == ':');
  lua_settop(L, set);
  return 1;
}

static char **repl_matches;
static size_t repl_nmatches;

static void repl_free_matches(void) {
  for (size_t i = 0; i < repl_nmatches; i++) free(repl_matches[i]);
  free(repl_matches);
  repl_matches = NULL;
  repl_nmatches = 0;
}

/* Fills repl_matches from repl_gather's set. */
static void repl_collect(const char *text) {
  lua_State *L = repl_L;
  int top = lua_gettop(L);
  repl_free_matches();
  if (!lua_checkstack(L, 40)) return;
  lua_pushcfunction(L, repl_gather);
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      n++;
      lua_pop(L, 1);
    }
    repl_matches = n ? calloc(n, sizeof *repl_matches) : NULL;
    lua_pushnil(L);
    while (repl_matches && lua_next(L, -2)) {
      char *s = strdup(lua_tostring(L, -2));
      if (s) repl_matches[repl_nmatches++] = s;
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
}

static char *repl_generator(const char *text, int state) {
  static size_t next;
  (void)text;
  if (state == 0) next = 0;
  return next < repl_nmatches ? strdup(repl_matches[next++]) : NULL;
}

/* What completion falls back to when repl_complete finds nothing: nothing
 * (file names make no sense in Lua code). */
static char *repl_nofallback(const char *text, int state) {
  (void)text;
  (void)state;
  return NULL;
}

static char **repl_complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_completion_append_character = '\0';      /* "mg.matmul", not "mg.matmul " */
  repl_collect(text);
  char **m = rl_completion_matches(text, repl_generator);
  repl_free_matches();
  return m;
}

static void repl_rlsetup(void) {
  static char breaks[] = " \t\n\"'`<>=;+-*/%^~#&|,{}()[]";
  rl_readline_name = "moongrad";
  rl_catch_signals = 0;                       /* Ctrl-C is ours (repl_rlread) */
  rl_getc_function = repl_getc;
  rl_attempted_completion_function = repl_complete;
  rl_completion_entry_function = repl_nofallback;
  rl_completer_word_break_characters = breaks;
  rl_basic_word_break_characters = breaks;    /* the one libedit reads */
}

/* ---- help() --------------------------------------------------------------------------------- */

static const char repl_intro[] =
    "moongrad is Lua 5.4 with tensors and automatic differentiation; the library is `mg`.\n"
    "  t = mg.tensor{{1, 2}, {3, 4}}    a tensor (Lua integers give int64, floats float32)\n"
    "  mg.matmul(t, t), t:sum{axis=1}   every op is a function and a method; axes count from 1\n"
    "  t[1], t:slice{{1, 2}, {}}        rows and inclusive slices, 1-based like Lua\n"
    "  help(mg.matmul)                  the documentation of a function (signature, options, example)\n"
    "  help(mg.nn.Dense), help(mg.nn)   of a class, of a module; help(model.fit) of a method\n"
    "  help(mg)                         the modules, classes and functions of mg\n"
    "Tab completes names (mg.<Tab>, t:<Tab>, model:<Tab>); Ctrl-C interrupts; Ctrl-D exits.\n";

/* help(x): prints require("moongrad").help(x) (moongrad/help.lua makes the text, from the op
 * table and the stdlib's doc comments), trying mg[x] for a name. */
static int repl_help(lua_State *L) {
  if (lua_gettop(L) == 0) {
    fputs(repl_intro, stdout);
    fflush(stdout);
    return 0;
  }
  lua_settop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad");
  lua_call(L, 1, 1);                                        /* 2: mg */
  for (int pass = 0; pass < 2; pass++) {
    if (!lua_istable(L, 2)) break;
    lua_getfield(L, 2, "help");
    if (!lua_isfunction(L, -1)) break;
    if (pass == 0) lua_pushvalue(L, 1);
    else if (lua_type(L, 1) == LUA_TSTRING) lua_getfield(L, 2, lua_tostring(L, 1));
    else break;
    lua_call(L, 1, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t n;
      const char *doc = lua_tolstring(L, -1, &n);
      fwrite(doc, 1, n, stdout);
      if (n == 0 || doc[n - 1] != '\n') fputc('\n', stdout);
      fflush(stdout);
      return 0;
    }
    lua_settop(L, 2);
  }
  printf("no help for %s\n", luaL_tolstring(L, 1, NULL));
  fflush(stdout);
  return 0;
}

void mgP_openhelp(lua_State *L) {
  lua_pushcfunction(L, repl_help);
  lua_setglobal(L, "help");
}
