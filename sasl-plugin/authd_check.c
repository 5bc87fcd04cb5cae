/* Token checks for samlgw-authd (see authd_check.h). */
#include "authd_check.h"
#include "services.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static int map_user(const struct authd_settings *s, const char *login, const char *realm,
		    char **jid_r, const char **error_r)
{
	char *text = NULL;
	char jid[USER_MAP_BUF], name[USER_MAP_BUF];
	const char *user = login;
	if (strchr(login, '@') == NULL && realm != NULL && realm[0] != '\0')
		user = text = xasprintf("%s@%s", login, realm);
	int ret = user_map_apply(&s->map, user, strlen(user), jid, name, error_r);
	free(text);
	if (ret == 0)
		*jid_r = xstrdup(jid);
	return ret;
}

enum store_result authd_check(struct token_store *store, const struct authd_settings *s,
			      const char *login, const char *realm, const char *service,
			      const char *password, char **jid_r, const char **error_r)
{
	*jid_r = NULL;
	const char *wanted = s->service != NULL ? s->service : service;
	if (wanted == NULL || wanted[0] == '\0')
		wanted = s->default_service;
	char svc[SERVICE_NAME_MAX + 1];
	size_t len = wanted != NULL ? strlen(wanted) : 0;
	if (len == 0 || len > SERVICE_NAME_MAX) {
		*error_r = "the service name is empty or too long";
		return STORE_INVALID;
	}
	for (size_t i = 0; i <= len; i++)
		svc[i] = (char)(wanted[i] >= 'A' && wanted[i] <= 'Z' ? wanted[i] - 'A' + 'a'
								      : wanted[i]);
	if (!service_name_valid(svc) || strcmp(svc, "*") == 0) {
		*error_r = "the service name is not one a token can grant";
		return STORE_INVALID;
	}
	char *jid;
	if (map_user(s, login, realm, &jid, error_r) < 0)
		return STORE_INVALID;
	enum store_result r = store_verify(store, password, strlen(password), jid, svc, NULL,
					   error_r);
	*jid_r = jid;
	return r;
}

enum store_result authd_user_known(struct token_store *store, const struct authd_settings *s,
				   const char *user, const char *realm, const char **error_r)
{
	char *jid;
	if (map_user(s, user, realm, &jid, error_r) < 0)
		return STORE_INVALID;
	struct token_list list;
	enum store_result r = store_list(store, jid, &list, error_r);
	free(jid);
	if (r != STORE_OK)
		return r;
	bool known = list.n > 0;
	token_list_free(&list);
	if (!known) {
		*error_r = "the user holds no live token";
		return STORE_INVALID;
	}
	return STORE_OK;
}
