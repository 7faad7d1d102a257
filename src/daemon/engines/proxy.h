/* proxy.h — requests for external engines (engine: external): the OpenAI routes a model declares
 * (dispatched by the body's "model", JSON or multipart) and /upstream/<model>/<path> (any method,
 * query string kept) are relayed over HTTP to the engine's process on 127.0.0.1, which the
 * scheduler starts, counts and evicts like a worker. The request holds the model for its whole
 * duration; the response streams back as it comes (SSE intact), hop-by-hop headers and the
 * client's Authorization dropped. A client that goes away cancels the upstream transfer.
 * Websocket upgrades are not relayed. */
#ifndef SY_PROXY_H
#define SY_PROXY_H

#include <stdbool.h>

#include "daemon.h"

/* Handle r if it is for an external engine (true: a reply was made); false: not ours. */
bool proxy_handle(sy_daemon *d, http_req *r);

#endif
