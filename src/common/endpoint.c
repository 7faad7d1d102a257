/* endpoint.c — see endpoint.h. */
#include "endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define PORT_MAX 65535

static bool host_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

int sy_endpoint_parse(const char *s, char *host, size_t hostcap, int *port, char *err,
                      size_t errlen) {
  const char *colon = s ? strchr(s, ':') : NULL;
  if (!colon) {
    snprintf(err, errlen, "'%.64s' is not host:port", s ? s : "");
    return -1;
  }
  size_t hl = (size_t)(colon - s);
  if (hl == 0 || hl > SY_ENDPOINT_HOST_MAX) {
    snprintf(err, errlen, "'%.64s': the host must be 1..%d characters", s, SY_ENDPOINT_HOST_MAX);
    return -1;
  }
  for (size_t i = 0; i < hl; i++)
    if (!host_char_ok(s[i])) {
      snprintf(err, errlen,
               "'%.64s': the host may hold letters, digits, '.' and '-' only (a name or an IPv4 "
               "address: ggml's RPC client reads no IPv6)",
               s);
      return -1;
    }
  const char *p = colon + 1;
  long v = 0;
  size_t nd = 0;
  for (; p[nd] >= '0' && p[nd] <= '9' && nd < 6; nd++) v = v * 10 + (p[nd] - '0');
  if (nd == 0 || p[nd] != '\0' || p[0] == '0' || v < 1 || v > PORT_MAX) {
    snprintf(err, errlen, "'%.64s': the port must be 1..%d", s, PORT_MAX);
    return -1;
  }
  if (host) {
    if (hostcap <= hl) {
      snprintf(err, errlen, "'%.64s': the host is too long", s);
      return -1;
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
  }
  if (port) *port = (int)v;
  return 0;
}

static enum sy_addr_scope scope_v4(uint32_t a) {
  if ((a >> 24) == 127) return SY_ADDR_LOOPBACK;
  if ((a >> 24) == 10 || (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168) ||
      (a >> 22) == (100u << 2 | 1) || (a >> 16) == (169u << 8 | 254))
    return SY_ADDR_PRIVATE;
  return SY_ADDR_PUBLIC; /* 0.0.0.0 (every interface) too */
}

static enum sy_addr_scope scope_v6(const struct in6_addr *a) {
  if (IN6_IS_ADDR_LOOPBACK(a)) return SY_ADDR_LOOPBACK;
  if (IN6_IS_ADDR_V4MAPPED(a)) {
    uint32_t v4;
    memcpy(&v4, a->s6_addr + 12, sizeof v4);
    return scope_v4(ntohl(v4));
  }
  if ((a->s6_addr[0] & 0xfe) == 0xfc || IN6_IS_ADDR_LINKLOCAL(a)) return SY_ADDR_PRIVATE;
  return SY_ADDR_PUBLIC; /* :: (every interface) too */
}

enum sy_addr_scope sy_addr_scope_numeric(const char *addr) {
  struct in_addr a4;
  struct in6_addr a6;
  if (!addr) return SY_ADDR_INVALID;
  if (inet_pton(AF_INET, addr, &a4) == 1) return scope_v4(ntohl(a4.s_addr));
  if (inet_pton(AF_INET6, addr, &a6) == 1) return scope_v6(&a6);
  return SY_ADDR_INVALID;
}

const char *sy_addr_scope_name(enum sy_addr_scope s) {
  switch (s) {
    case SY_ADDR_LOOPBACK:
      return "loopback";
    case SY_ADDR_PRIVATE:
      return "private";
    case SY_ADDR_PUBLIC:
      return "public";
    default:
      return "invalid";
  }
}
