/* cli.h — subcommands of the switchyard program that talk to a running daemon as clients. */
#ifndef SY_CLI_H
#define SY_CLI_H

/* `switchyard ps [--host H] [--port P] [--api-key K]`: print what is loaded. Exit status. */
int cli_ps(int argc, char **argv);
/* `switchyard pull [--host H] [--port P] [--api-key K] MODEL`: the daemon fetches MODEL (POST
 * /api/pull); progress on stderr. Exit status. */
int cli_pull(int argc, char **argv);

#endif
