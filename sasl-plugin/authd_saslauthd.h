/* samlgw-authd's saslauthd server: worker threads answering saslauthd requests on a
 * listening unix socket, each with its own token store. */
#ifndef SAMLGW_AUTHD_SASLAUTHD_H
#define SAMLGW_AUTHD_SASLAUTHD_H

#include "authd_check.h"

struct saslauthd_server;

/* Start threads workers on listen_fd (a listening unix stream socket, owned by the
 * caller). Returns 0, or -1 with *error_r. */
int saslauthd_server_start(int listen_fd, const struct authd_settings *settings,
			   unsigned threads, struct saslauthd_server **server_r,
			   const char **error_r);

/* Stop accepting, let requests in flight finish, join the workers and free. NULL ok. */
void saslauthd_server_stop(struct saslauthd_server *server);

#endif
