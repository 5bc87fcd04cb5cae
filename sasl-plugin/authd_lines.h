/* samlgw-authd's stdin/stdout protocols for XMPP servers that delegate authentication:
 *
 *   ejabberd extauth:  each request is a u16 big-endian length and "auth:USER:SERVER:PASS",
 *                      "isuser:USER:SERVER", "setpass:…", "tryregister:…", "removeuser:…",
 *                      "removeuser3:…"; each answer is 00 02 then 00 01 (true) or 00 00.
 *   Prosody mod_auth_external (generic): one request per line, same commands; each answer
 *                      is a line "1" or "0".
 *
 * Only auth and isuser can be true: samlgw issues tokens, it keeps no passwords. */
#ifndef SAMLGW_AUTHD_LINES_H
#define SAMLGW_AUTHD_LINES_H

#include <stddef.h>

#include "authd_check.h"

/* The largest request accepted. */
#define AUTHD_LINE_MAX 4096

enum line_protocol {
	LINE_EJABBERD,
	LINE_PROSODY,
};

struct line_request {
	const char *command, *user, *server, *password; /* inside the caller's buffer */
};

/* Split text (NUL-terminated, modified in place) at its first three ':'; the password is
 * everything after the third. Returns 0, or -1 when there is no user and server. */
int line_request_parse(char *text, struct line_request *req_r);

/* Serve requests from in_fd to out_fd until end of input. Returns 0 at end of input, -1
 * on a broken stream (with *error_r). */
int line_protocol_run(enum line_protocol protocol, int in_fd, int out_fd,
		      const struct authd_settings *settings, const char **error_r);

#endif
