/* endpoint.h — "host:port" network endpoints as ggml's RPC backend takes them (a model's `rpc:`
 * servers in the matrix, the worker that connects to them), and how far an address reaches (the
 * `switchyard rpc-server` verb refuses to bind beyond the private networks without a flag: RPC has
 * no authentication). Pure functions, no I/O.
 * Must never accept an endpoint ggml would read differently (it splits at the first ':' and reads
 * the port with stoi), and never call an address private that routes to the internet. */
#ifndef SY_ENDPOINT_H
#define SY_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

#define SY_ENDPOINT_HOST_MAX 253                   /* a DNS name's longest text form */
#define SY_ENDPOINT_MAX (SY_ENDPOINT_HOST_MAX + 6) /* host, ':', five digits */

/* s as "host:port" (host: a DNS name or a dotted IPv4 address, letters, digits, '.', '-' only;
 * port 1..65535 in decimal, no sign, no leading zero) into host (at least SY_ENDPOINT_HOST_MAX + 1
 * bytes) and *port. 0, or -1 with the reason in err. host and port may be NULL. */
int sy_endpoint_parse(const char *s, char *host, size_t hostcap, int *port, char *err,
                      size_t errlen);

enum sy_addr_scope {
  SY_ADDR_INVALID = -1, /* not a numeric address */
  SY_ADDR_LOOPBACK = 0, /* 127.0.0.0/8, ::1 */
  SY_ADDR_PRIVATE,      /* RFC 1918 (10/8, 172.16/12, 192.168/16), shared address space
                           100.64/10 (carrier NAT, Tailscale), link-local 169.254/16, IPv6
                           unique-local fc00::/7 and link-local fe80::/10 */
  SY_ADDR_PUBLIC,       /* anything else, and the wildcards 0.0.0.0 and :: (every interface) */
};

/* The scope of one numeric address (IPv4 dotted quad or IPv6 text); SY_ADDR_INVALID for anything
 * else. Pure. */
enum sy_addr_scope sy_addr_scope_numeric(const char *addr);

const char *sy_addr_scope_name(enum sy_addr_scope s);

#endif
