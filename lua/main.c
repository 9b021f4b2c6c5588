/*
 * main.c — the `moongrad` program: Lua 5.4's stand-alone interpreter with the
 * engine built in.
 *
 * It takes lua.c's command line (-e stat, -l mod, -l g=mod, -i, -v, -E, -W,
 * --, -, script args with the `arg` table and `...`, LUA_INIT) and its exit
 * codes, plus --version and --help. Everything runs inside one protected call
 * (main_pmain), so even an error while setting up is reported, never fatal;
 * each chunk runs under mgP_docall, which adds a traceback through a message
 * handler and turns Ctrl-C into a Lua error: the signal handler only sets a
 * hook, and the hook raises "interrupted!" at the next Lua instruction (a
 * signal handler may not call Lua itself). It also sets the interrupt flag of
 * the engine's limits (core/limits.c), current during the chunk, so a staged
 * graph stops at its next loop iteration and a long kernel at its next chunk
 * ("interrupted"). At the prompt (mgP_interactive) no Ctrl-C ends the
 * process and a blocking read returns (no SA_RESTART).
 *
 * Before any user code runs, the engine is registered as
 * package.preload["moongrad.core"] (it is linked in, so no .so is searched),
 * the stdlib directory next to the executable is put first on package.path
 * (PREFIX/share/lua/5.4 when installed, the repository's stdlib/ when run
 * from build/bin), the global `mg` is require "moongrad", and the global
 * help() (repl.c) is defined: scripts and -e may use it too.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "capi/capi.h"
#include "repl.h"

#define MAIN_VERSION "moongrad " MG_VERSION " (" LUA_RELEASE ")"

enum { ARG_ERROR = 1, ARG_I = 2, ARG_V = 4, ARG_E = 8, ARG_BIGE = 16, ARG_VERSION = 32, ARG_HELP = 64 };

static const char *main_progname = "moongrad";
static lua_State *main_L;   /* the state the signal handler sets its hook on */
static mg_limits *main_limits;   /* what the engine polls (staged loops, long kernels): Ctrl-C sets its flag */
static volatile sig_atomic_t main_fired;   /* main_action ran during this call (how often, at the prompt) */
static int main_interactive;               /* the REPL runs: Ctrl-C never ends the process */

void mgP_interactive(int on) { main_interactive = on; }

static void main_message(const char *pname, const char *msg) {
  if (pname) fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* "moongrad 0.1.0 (Lua 5.4.6)  Copyright (C) 1994-2023 Lua.org, PUC-Rio" */
static void main_version(void) {
  printf("%s  %s\n", MAIN_VERSION, LUA_COPYRIGHT + strlen(LUA_RELEASE) + 2);
  fflush(stdout);
}

static int main_report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    main_message(main_progname, msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return status;
}

/* ---- running chunks ---------------------------------------------------------- */

/* The hook after Ctrl-C: "interrupted!" at the innermost frame of the user's
 * code (the library's own files are looked through, as for every error the
 * module raises: a Ctrl-C during fit names the user's fit line, not the data
 * adapter's), or with no position when there is none. */
static void main_stop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lua_Debug f;
  for (int level = 0; lua_getstack(L, level, &f); level++) {
    if (lua_getinfo(L, "Sl", &f) && f.currentline > 0 && !mgL_is_own_source(NULL, f.source)) {
      lua_pushfstring(L, "%s:%d: interrupted!", f.short_src, f.currentline);
      lua_error(L);
    }
  }
  lua_pushliteral(L, "interrupted!");
  lua_error(L);
}

/* SIGINT while Lua runs: stop at the next hook, or, in a staged graph or a
 * long kernel, at the engine's next check (loop iteration, kernel chunk). In
 * a script, a second Ctrl-C before that (a C call that never checks: a BLIS
 * block, blocking I/O) gets the default action and ends the process, as in
 * lua.c. At the prompt no Ctrl-C ends the session and its variables: each
 * one interrupts again, and the third in one statement says how to quit. */
static void main_action(int sig) {
  if (!main_interactive) signal(sig, SIG_DFL);
  else if (++main_fired == 3) {
    static const char note[] = "\n(still in a call that does not check for Ctrl-C; Ctrl-\\ quits the program)\n";
    ssize_t w = write(STDERR_FILENO, note, sizeof note - 1);   /* async-signal-safe */
    (void)w;
  }
  if (!main_fired) main_fired = 1;
  mg_limits_interrupt(main_limits);   /* an atomic store: stops a staged graph or kernel too */
  lua_sethook(main_L, main_stop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Message handler: the message with a traceback; error objects that are not
 * strings use their __tostring or say what they are. */
static int main_msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int mgP_docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, main_msghandler);
  lua_insert(L, base);
  main_L = L;
  main_fired = 0;
  if (!main_limits) main_limits = mg_limits_new();
  if (main_limits) mg_limits_start(main_limits, 0, 0);
  mg_limits *prev = mg_limits_enter(main_limits);
  struct sigaction sa, outer;                         /* the REPL has its own */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = main_action;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = main_interactive ? 0 : SA_RESTART;     /* at the prompt a blocking read stops too */
  sigaction(SIGINT, &sa, &outer);
  int status = lua_pcall(L, narg, nres, base);
  sigaction(SIGINT, &outer, NULL);
  mg_limits_enter(prev);
  if (main_fired) lua_sethook(L, NULL, 0, 0);   /* Ctrl-C came after the last hook */
  lua_remove(L, base);
  return status;
}

static int main_dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = mgP_docall(L, 0, 0);
  return main_report(L, status);
}

static int main_dostring(lua_State *L, const char *s, const char *name) {
  return main_dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l name: require "name" into the global name (up to a '-': "-l mod-v2" sets
 * `mod`); -l g=mod: require "mod" into the global g. */
static int main_library(lua_State *L, const char *spec) {
  const char *eq = strchr(spec, '=');
  const char *mod = eq ? eq + 1 : spec;
  size_t glen = eq ? (size_t)(eq - spec) : strcspn(spec, "-");
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  int status = mgP_docall(L, 1, 1);
  if (status == LUA_OK) {
    lua_pushglobaltable(L);
    lua_pushlstring(L, spec, glen);
    lua_pushvalue(L, -3);
    lua_settable(L, -3);
    lua_pop(L, 2);
  }
  return main_report(L, status);
}

/* Pushes the script's arguments (argv[1..]) and returns their count. */
static int main_pushargs(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return n;
}

/* The script at argv[0] ("-" is stdin unless it came after "--"). */
static int main_script(lua_State *L, char **argv, int after_dashdash) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && !after_dashdash) fname = NULL;
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = main_pushargs(L);
    status = mgP_docall(L, n, LUA_MULTRET);
  }
  return main_report(L, status);
}

/* LUA_INIT_5_4 or LUA_INIT: "@file" runs the file, anything else is code. */
static int main_luainit(lua_State *L) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return main_dochunk(L, luaL_loadfile(L, init + 1));
  return main_dostring(L, init, name);
}

/* ---- the command line ---------------------------------------------------------- */

static void main_usage(FILE *f, const char *badopt) {
  if (badopt) {
    if ((badopt[1] == 'e' || badopt[1] == 'l') && badopt[2] == '\0')
      fprintf(f, "%s: '%s' needs argument\n", main_progname, badopt);
    else
      fprintf(f, "%s: unrecognized option '%s'\n", main_progname, badopt);
  }
  fprintf(f,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables\n"
          "  -W        turn warnings on\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n"
          "  --version print the version and exit\n"
          "  --help    print this help and exit\n",
          main_progname);
  fflush(f);
}

/* Scans the options. *script is the index of the script (or of the bad
 * option on ARG_ERROR), 0 when there is none; *dashdash says it followed
 * "--" (so "-" is then a file name). */
static int main_collect(char **argv, int *script, int *dashdash) {
  int flags = 0, i;
  *script = 0;
  *dashdash = 0;
  for (i = 1; argv[i]; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0') break;            /* a script, or "-" (stdin) */
    if (strcmp(a, "--") == 0) {
      *dashdash = 1;
      i++;
      break;
    }
    if (strcmp(a, "--version") == 0) return flags | ARG_VERSION;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return flags | ARG_HELP;
    char opt = a[1];
    int alone = a[2] == '\0';
    if ((opt == 'E' || opt == 'W' || opt == 'i' || opt == 'v') && alone) {
      flags |= opt == 'E' ? ARG_BIGE : opt == 'i' ? ARG_I | ARG_V : opt == 'v' ? ARG_V : 0;
    } else if (opt == 'e' || opt == 'l') {
      if (opt == 'e') flags |= ARG_E;
      if (alone && (argv[i + 1] == NULL || argv[i + 1][0] == '-')) {
        *script = i;
        return ARG_ERROR;
      }
      if (alone) i++;
    } else {
      *script = i;
      return ARG_ERROR;
    }
  }
  if (argv[i]) *script = i;
  return flags;
}

/* Runs -e, -l and -W in command-line order (the arguments before `last`). */
static int main_runargs(lua_State *L, char **argv, int last) {
  for (int i = 1; i < last; i++) {
    char opt = argv[i][1];
    if (opt == 'W') lua_warning(L, "@on", 0);
    if (opt != 'e' && opt != 'l') continue;
    const char *val = argv[i][2] ? argv[i] + 2 : argv[++i];
    int status = opt == 'e' ? main_dostring(L, val, "=(command line)") : main_library(L, val);
    if (status != LUA_OK) return 0;
  }
  return 1;
}

/* The global `arg`: the script at 0, its arguments at 1.., the interpreter
 * and options at negative indices (with no script, argv[0] is at 0). */
static void main_argtable(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc > script ? argc - script - 1 : 0, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* ---- the engine and the stdlib ------------------------------------------------- */

static int main_isfile(const char *dir, const char *rel) {
  char path[2 * PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  return access(path, R_OK) == 0;
}

/* The canonical form of <exe dir>/rel in out (PATH_MAX), if it exists. */
static int main_dir(const char *exedir, const char *rel, char *out) {
  char path[2 * PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", exedir, rel);
  return realpath(path, out) != NULL;
}

/* Puts the stdlib found next to the executable first on package.path:
 * <bin>/../share/lua/5.4 (installed), else <bin>/../../stdlib and the
 * repository root (build/bin inside the repository, like make print-luapath). */
static void main_setpath(lua_State *L) {
  char exe[PATH_MAX], dir[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash) return;
  *slash = '\0';
  luaL_Buffer b;
  lua_getglobal(L, "package");
  luaL_buffinit(L, &b);
  if (main_dir(exe, "../share/lua/5.4", dir) && main_isfile(dir, "moongrad/init.lua")) {
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
    luaL_addvalue(&b);
  } else if (main_dir(exe, "../..", dir) && main_isfile(dir, "stdlib/moongrad/init.lua")) {
    lua_pushfstring(L, "%s/stdlib/?.lua;%s/stdlib/?/init.lua;%s/?.lua;", dir, dir, dir);
    luaL_addvalue(&b);
  }
  lua_getfield(L, -2, "path");
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

/* preload["moongrad.core"], the stdlib path, then mg = require "moongrad". */
static int main_openmg(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_moongrad_core);
  lua_setfield(L, -2, "moongrad.core");
  lua_pop(L, 1);
  main_setpath(L);
  mgP_openhelp(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad");
  int status = mgP_docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, "mg");
  return main_report(L, status);
}

/* ---- main ------------------------------------------------------------------------ */

/* Everything, in protected mode. Pushes true when all went well. */
static int main_pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script, dashdash;
  int flags = main_collect(argv, &script, &dashdash);
  luaL_checkversion(L);
  if (flags & ARG_ERROR) {
    main_usage(stderr, argv[script]);
    return 0;
  }
  if (flags & (ARG_VERSION | ARG_HELP)) {
    if (flags & ARG_VERSION) printf("%s\n", MAIN_VERSION);
    else main_usage(stdout, NULL);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (flags & ARG_V) main_version();
  if (flags & ARG_BIGE) {                 /* libraries ignore LUA_PATH & co. */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  main_argtable(L, argv, argc, script ? script : 0);
  if (main_openmg(L) != LUA_OK) return 0;
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);  /* as lua.c: young tensors die cheaply (see mgL_pushtensor) */
  if (!(flags & ARG_BIGE) && main_luainit(L) != LUA_OK) return 0;
  if (!main_runargs(L, argv, script ? script : argc)) return 0;
  if (script && main_script(L, argv + script, dashdash) != LUA_OK) return 0;
  if (flags & ARG_I) {
    mgP_repl(L);
  } else if (!script && !(flags & (ARG_E | ARG_V))) {
    if (isatty(STDIN_FILENO)) {
      main_version();
      mgP_repl(L);
    } else if (main_dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) {
      return 0;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  if (argv[0] && argv[0][0]) main_progname = argv[0];
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    main_message(main_progname, "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP);                  /* no collections while setting up */
  lua_pushcfunction(L, main_pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int ok = lua_toboolean(L, -1);
  main_report(L, status);
  lua_close(L);
  return status == LUA_OK && ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
