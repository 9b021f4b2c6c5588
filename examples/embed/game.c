/*
 * game.c — a grid-world game whose agent is a moongrad policy network.
 *
 *   build/examples/game [--quick]        (MG_QUICK=1 also means --quick)
 *
 * The host owns the game: an 8x8 grid, the agent (@) and a goal (*) that
 * moves to a new random cell each time it is reached. Every frame the host
 * writes the observation (8 numbers) into a float buffer that the Lua side
 * sees as a tensor without any copy (mg_tensor_borrow, set once as the global
 * `obs`), and runs the staged policy `act` (mg.func, looked up once with
 * mg_lookup_staged) straight into a host int64 with mg_call_into: no Lua
 * value and no heap allocation per frame. For the first frames the host also plays teacher: it moves the
 * agent with the shortest-path action, hands that action to `remember`, and
 * every 4 frames calls `train` (one SGD step of the policy, an MLP 8-64-64-4,
 * on a minibatch of what was remembered). Then the policy plays alone and the
 * host counts how many goals it reaches. It prints frames per second, the
 * time of one policy call, and exits non-zero if the trained agent plays
 * badly (so `make test` notices).
 *
 * Without --quick and on a terminal, the board is drawn every frame with
 * ANSI escapes and the solo phase is slowed down to be watchable.
 */
#include "moongrad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GRID 8

static const char *const policy_lua =
  "-- the agent: an MLP 8-64-64-4 and its online training (behaviour cloning)\n"
  "local H = 64\n"
  "local function layer(n_in, n_out)\n"
  "  return mg.Variable(mg.random.normal({n_in, n_out}, 0, math.sqrt(2 / n_in))), mg.Variable(mg.zeros{n_out})\n"
  "end\n"
  "local W1, b1 = layer(8, H)\n"
  "local W2, b2 = layer(H, H)\n"
  "local W3, b3 = layer(H, 4)\n"
  "local params = {W1, b1, W2, b2, W3, b3}\n"
  "local velocity = {}\n"
  "for i, p in ipairs(params) do velocity[i] = mg.zeros_like(p) end\n"
  "\n"
  "local function logits(x)\n"
  "  local h = mg.relu(mg.matmul(x, W1) + b1)\n"
  "  h = mg.relu(mg.matmul(h, W2) + b2)\n"
  "  return mg.matmul(h, W3) + b3\n"
  "end\n"
  "\n"
  "-- act(x): the greedy action (1..4) for a 1x8 observation, staged: the host\n"
  "-- runs its graph every frame (it reads the Variables at each call)\n"
  "act = mg.func(function(x) return mg.argmax(logits(x)) end, {autograph = false})\n"
  "\n"
  "local seen_x, seen_y, n = {}, {}, 0\n"
  "-- remember(action): keeps a copy of obs with the teacher's action\n"
  "function remember(action)\n"
  "  n = n + 1\n"
  "  local slot = (n - 1) % 512 + 1          -- a ring buffer of the last 512 frames\n"
  "  seen_x[slot], seen_y[slot] = obs:clone(), action\n"
  "end\n"
  "\n"
  "-- train(): one SGD-with-momentum step on 64 remembered frames; returns the loss\n"
  "function train()\n"
  "  local xs, ys = {}, {}\n"
  "  for i = 1, 64 do\n"
  "    local k = math.random(#seen_x)\n"
  "    xs[i], ys[i] = seen_x[k], seen_y[k]\n"
  "  end\n"
  "  local x, y = mg.concat(xs, 1), mg.one_hot(mg.tensor(ys), 4)\n"
  "  local tape = mg.GradientTape()\n"
  "  local loss = -mg.mean(mg.sum(y * mg.log_softmax(logits(x)), {axis = 2}))\n"
  "  tape:stop()\n"
  "  local grads = tape:gradient(loss, params)\n"
  "  for i, p in ipairs(params) do\n"
  "    velocity[i] = velocity[i] * 0.9 + grads[i]\n"
  "    p:assign_sub(velocity[i] * 0.05)\n"
  "  end\n"
  "  return loss:item()\n"
  "end\n";

typedef struct game {
  int ax, ay, gx, gy;
  unsigned rng;
} game;

static int game_rand(game *g, int n) {
  g->rng = g->rng * 1103515245u + 12345u;
  return (int)((g->rng >> 16) % (unsigned)n);
}

static void game_new_goal(game *g) {
  do {
    g->gx = game_rand(g, GRID);
    g->gy = game_rand(g, GRID);
  } while (g->gx == g->ax && g->gy == g->ay);
}

/* Observation: positions scaled to [0, 1], the offset to the goal and its signs. */
static void game_observe(const game *g, float *obs) {
  float dx = (float)(g->gx - g->ax), dy = (float)(g->gy - g->ay);
  obs[0] = (float)g->ax / (GRID - 1);
  obs[1] = (float)g->ay / (GRID - 1);
  obs[2] = (float)g->gx / (GRID - 1);
  obs[3] = (float)g->gy / (GRID - 1);
  obs[4] = dx / (GRID - 1);
  obs[5] = dy / (GRID - 1);
  obs[6] = (float)((dx > 0) - (dx < 0));
  obs[7] = (float)((dy > 0) - (dy < 0));
}

/* Actions 1..4: up, down, left, right (Lua counts from 1). */
static int game_teacher(const game *g) {
  int dx = g->gx - g->ax, dy = g->gy - g->ay;
  if (abs(dx) >= abs(dy)) return dx > 0 ? 4 : 3;
  return dy > 0 ? 2 : 1;
}

/* Moves the agent; returns 1 when it reached the goal (then a new goal appears). */
static int game_step(game *g, int action) {
  static const int mx[5] = {0, 0, 0, -1, 1}, my[5] = {0, -1, 1, 0, 0};
  if (action < 1 || action > 4) return 0;
  int nx = g->ax + mx[action], ny = g->ay + my[action];
  if (nx >= 0 && nx < GRID && ny >= 0 && ny < GRID) {
    g->ax = nx;
    g->ay = ny;
  }
  if (g->ax == g->gx && g->ay == g->gy) {
    game_new_goal(g);
    return 1;
  }
  return 0;
}

static void game_draw(const game *g, const char *phase, int frame, int goals, double loss) {
  printf("\033[H\033[2J%s  frame %d  goals %d  loss %.3f\n", phase, frame, goals, loss);
  for (int y = 0; y < GRID; y++) {
    for (int x = 0; x < GRID; x++)
      fputs(x == g->ax && y == g->ay ? " @" : x == g->gx && y == g->gy ? " *" : " .", stdout);
    putchar('\n');
  }
  fflush(stdout);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(mg_runtime *rt, const char *what) {
  fprintf(stderr, "game: %s failed:\n%s\n", what, rt ? mg_runtime_errmsg(rt) : mg_last_error());
  mg_runtime_free(rt);
  return 1;
}

int main(int argc, char **argv) {
  int quick = (argc > 1 && strcmp(argv[1], "--quick") == 0) || (getenv("MG_QUICK") && *getenv("MG_QUICK") == '1');
  int draw = !quick && isatty(STDOUT_FILENO);
  int teach_frames = quick ? 800 : 2000, solo_frames = quick ? 400 : 2000;

  mg_runtime_options opt = {0};
  opt.seed = 42;
  opt.instruction_limit = 50000000;   /* a policy bug must not hang the game */
  mg_runtime *rt = mg_runtime_new(&opt);
  if (!rt) return fail(NULL, "mg_runtime_new");
  if (mg_run_string(rt, "math.randomseed(7)", "=seed") || mg_run_string(rt, policy_lua, "=policy.lua"))
    return fail(rt, "loading the policy");

  /* The observation buffer, seen by Lua as the 1x8 tensor `obs`: no copy per frame. */
  float obs[8] = {0};
  int64_t shape[2] = {1, 8};
  mg_tensor *obs_t;
  if (mg_tensor_borrow(MG_FLOAT32, 2, shape, obs, NULL, NULL, &obs_t)) return fail(NULL, "mg_tensor_borrow");
  mg_value v = mg_vtensor(obs_t);
  if (mg_set_global(rt, "obs", &v)) return fail(rt, "mg_set_global");
  /* The action comes back into this host int64 (a 0-d tensor over it). */
  int64_t action_out = 0;
  mg_tensor *action_t;
  if (mg_tensor_borrow(MG_INT64, 0, NULL, &action_out, NULL, NULL, &action_t)) return fail(NULL, "mg_tensor_borrow");

  mg_staged *act;
  mg_ref remember, train;
  if (mg_lookup_staged(rt, "act", &obs_t, 1, &act) || mg_lookup(rt, "remember", &remember) ||
      mg_lookup(rt, "train", &train))
    return fail(rt, "lookup");

  game g = {.ax = 0, .ay = 0, .rng = 12345u};
  game_new_goal(&g);
  double loss = 0, t_policy = 0, t0 = now();
  int goals = 0, agree = 0, agree_n = 0, policy_calls = 0;
  mg_value res;
  for (int frame = 1; frame <= teach_frames + solo_frames; frame++) {
    int teaching = frame <= teach_frames;
    game_observe(&g, obs);
    double tp = now();
    if (mg_call_into(rt, act, &obs_t, 1, &action_t, 1)) return fail(rt, "act");
    t_policy += now() - tp;
    policy_calls++;
    int action = (int)action_out, teacher = game_teacher(&g);
    if (teaching) {
      mg_value a = mg_vinteger(teacher);
      if (mg_invoke_ref(rt, remember, &a, 1, NULL, 0)) return fail(rt, "remember");
      if (frame % 4 == 0 && frame >= 64) {
        if (mg_invoke_ref(rt, train, NULL, 0, &res, 1)) return fail(rt, "train");
        loss = res.u.n;
      }
      action = teacher;              /* the teacher drives while the agent learns */
    } else {
      agree += action == teacher;
      agree_n++;
    }
    goals += game_step(&g, action) && !teaching;
    if (draw) {
      game_draw(&g, teaching ? "teaching" : "agent alone", frame, goals, loss);
      if (!teaching) usleep(30000);
    }
  }
  double elapsed = now() - t0;
  int frames = teach_frames + solo_frames;
  /* The teacher needs at most 14 moves per goal: an agent that never errs gets solo_frames/7 or more. */
  double agreement = agree_n ? (double)agree / agree_n : 0;
  size_t peak;
  mg_runtime_memory(rt, &peak);
  printf("game: %d frames (%d teaching, %d alone) in %.2f s: %.0f frames/s%s\n", frames, teach_frames, solo_frames,
         elapsed, frames / elapsed, draw ? " (drawing and sleeping included)" : "");
  printf("game: policy call (MLP 8-64-64-4, staged, mg_call_into) %.2f us per frame; last training loss %.3f\n",
         t_policy / policy_calls * 1e6, loss);
  printf("game: alone, the agent chose the teacher's move %.0f%% of the time and reached %d goals; "
         "Lua heap peak %.1f MiB\n", agreement * 100, goals, peak / 1048576.0);
  mg_runtime_free(rt);
  mg_tensor_release(obs_t);     /* obs[] and action_out outlive every use */
  mg_tensor_release(action_t);
  mg_thread_cache_drain();
  if (agreement < 0.9 || goals < solo_frames / 20) {
    fprintf(stderr, "game: the trained agent plays badly\n");
    return 1;
  }
  return 0;
}
