/* The Lua scripts the token store runs in Redis. Each one is a single atomic step, and
 * each reads the clock with TIME on the Redis server, so every samlgw process and host
 * agrees on expiry. */
#ifndef SAMLGW_STORE_SCRIPTS_H
#define SAMLGW_STORE_SCRIPTS_H

enum store_script {
	SCRIPT_ISSUE,
	SCRIPT_VERIFY,
	SCRIPT_VERIFY_ANY,
	SCRIPT_LIST,
	SCRIPT_REVOKE,
	SCRIPT_REVOKE_ALL,
	SCRIPT_COUNT,
};

extern const char *const store_script_source[SCRIPT_COUNT];

#endif
