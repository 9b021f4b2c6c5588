/*
 * repl.h — what the two files of the `moongrad` program share.
 *
 * main.c runs chunks (under lua_pcall with a traceback handler, Ctrl-C
 * turned into a Lua error) and reports errors; repl.c reads, completes and
 * prints at the prompt, and defines the help() global. The "mgP_" prefix
 * marks these program-only helpers (they are not engine or binding API).
 */
#ifndef MG_REPL_H
#define MG_REPL_H

#include <lua.h>

/* ---- main.c ---- */
/* Calls the function below narg arguments on the stack, with a traceback
 * message handler and Ctrl-C interrupting it; returns the lua_pcall status. */
int mgP_docall(lua_State *L, int narg, int nres);
/* At the prompt (on != 0) no Ctrl-C ends the process: each one interrupts
 * the running statement again. In a script the second one does (lua.c). */
void mgP_interactive(int on);

/* ---- repl.c ---- */
/* The read-eval-print loop, until end of input (Ctrl-D). Line editing,
 * history and completion when stdin is a terminal; plain reads otherwise. */
void mgP_repl(lua_State *L);
/* Defines the global help(x). */
void mgP_openhelp(lua_State *L);

#endif
