/* Reading and checking the SASL plugin's options (see plugin_settings.h). */
#include "plugin_settings.h"
#include "config.h"
#include "redis_url.h"
#include "services.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PREFIX "samlgw:"
#define DEFAULT_TIMEOUT_MS 500

void plugin_settings_clear(struct plugin_settings *s)
{
	if (s == NULL)
		return;
	free((char *)s->store.url);
	free((char *)s->store.prefix);
	free(s->service);
	free(s->domain);
	memset(s, 0, sizeof(*s));
}

struct user_map plugin_settings_user_map(const struct plugin_settings *s)
{
	/* samlgw_domain says who this application's users are, in every username mode. */
	struct user_map map = {.mode = s->user_mode, .domain = s->domain,
			       .restrict_domain = s->domain != NULL};
	return map;
}

/* Refuse the settings with a formatted reason (PLUGIN_NOMEM when even that cannot be
 * allocated). */
static enum plugin_settings_result broken(struct plugin_settings *s, char **error_r,
					  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum plugin_settings_result broken(struct plugin_settings *s, char **error_r,
					  const char *fmt, ...)
{
	plugin_settings_clear(s);
	va_list ap;
	va_start(ap, fmt);
	char *message;
	int n = vasprintf(&message, fmt, ap);
	va_end(ap);
	if (n < 0)
		return PLUGIN_NOMEM;
	*error_r = message;
	return PLUGIN_BROKEN;
}

static enum plugin_settings_result no_memory(struct plugin_settings *s)
{
	plugin_settings_clear(s);
	return PLUGIN_NOMEM;
}

static bool prefix_valid(const char *p)
{
	size_t len = strlen(p);
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] <= ' ' || p[i] >= 0x7f || p[i] == '"')
			return false;
	}
	return true;
}

enum plugin_settings_result plugin_settings_load(plugin_option_get *get, void *ctx,
						 struct plugin_settings *settings_r,
						 char **error_r)
{
	struct plugin_settings s = {0};
	const char *path = get(ctx, "samlgw_config");
	const char *url = get(ctx, "samlgw_redis");
	const char *prefix = get(ctx, "samlgw_prefix");
	const char *timeout = get(ctx, "samlgw_timeout_ms");
	const char *service = get(ctx, "samlgw_service");
	const char *username = get(ctx, "samlgw_username");
	const char *domain = get(ctx, "samlgw_domain");
	const char *error;

	if ((path == NULL || *path == '\0') && (url == NULL || *url == '\0'))
		return PLUGIN_UNCONFIGURED;

	if (path != NULL && *path != '\0') {
		if (prefix != NULL || timeout != NULL)
			return broken(&s, error_r,
				      "samlgw_prefix and samlgw_timeout_ms go with samlgw_redis "
				      "only; with samlgw_config set them in its [redis] section");
		/* config_load may abort when memory runs out; it runs once, when the host
		 * initialises libsasl2, not while users log in. */
		struct config *config;
		struct config_problems problems = {0};
		if (config_load(path, PROG_PLUGIN, &config, &problems) < 0) {
			enum plugin_settings_result r =
				broken(&s, error_r, "samlgw_config %s: %s%s", path,
				       problems.n > 0 ? problems.v[0] : "cannot be read",
				       problems.n > 1 ? " (and more problems)" : "");
			config_problems_free(&problems);
			return r;
		}
		s.store.url = strdup(url != NULL && *url != '\0' ? url : config->redis.url);
		s.store.prefix = strdup(config->redis.prefix);
		s.store.timeout_ms = (int)config->redis.timeout_ms;
		config_free(config);
		if (s.store.url == NULL || s.store.prefix == NULL)
			return no_memory(&s);
	} else {
		s.store.url = strdup(url);
		s.store.prefix = strdup(prefix != NULL ? prefix : DEFAULT_PREFIX);
		s.store.timeout_ms = DEFAULT_TIMEOUT_MS;
		if (s.store.url == NULL || s.store.prefix == NULL)
			return no_memory(&s);
		if (!prefix_valid(s.store.prefix))
			return broken(&s, error_r, "samlgw_prefix must be 1 to 64 printable characters");
		if (timeout != NULL) {
			long long ms;
			if (!parse_ll(timeout, 10, 60000, &ms))
				return broken(&s, error_r, "samlgw_timeout_ms must be 10 to 60000");
			s.store.timeout_ms = (int)ms;
		}
	}
	/* store_open (store_pool_new) parses the URL again; here only its reason is wanted. */
	struct redis_url *parsed;
	if (redis_url_parse(s.store.url, &parsed, &error) < 0)
		return broken(&s, error_r, "samlgw_redis: %s", error);
	redis_url_free(parsed);

	if (service != NULL) {
		if (services_normalize(service, &s.service, &error) < 0 ||
		    strchr(s.service, ',') != NULL || strcmp(s.service, "*") == 0)
			return broken(&s, error_r,
				      "samlgw_service must be one service name "
				      "([a-z0-9_.-], up to 32 characters)");
	}
	if (username != NULL && !user_mode_parse(username, &s.user_mode))
		return broken(&s, error_r, "samlgw_username must be jid or localpart");
	if (domain != NULL && *domain != '\0' && (s.domain = strdup(domain)) == NULL)
		return no_memory(&s);
	struct user_map map = plugin_settings_user_map(&s);
	if (user_map_check(&map, &error) < 0)
		return broken(&s, error_r, "samlgw_domain: %s", error);
	*settings_r = s;
	return PLUGIN_CONFIGURED;
}
