/* agent.h — `bench agent` and `bench agent-table`, the prompt cache's agent conversations (see
 * agent.c, bench/agent.sh). */
#ifndef SY_BENCH_AGENT_H
#define SY_BENCH_AGENT_H

/* bench agent --url URL --model NAME --scenario chat|multi|reload [...]: one run, JSON on stdout.
 */
int bench_agent(int argc, char **argv);
/* bench agent-table --dir DIR --runs N [--label TEXT]: the markdown tables of those runs. */
int bench_agent_table(int argc, char **argv);

#endif
