/* Process-wide state shared by the request handlers (see app.h). */
#include "app.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

const char *const app_pages[] = {"account", "token-issued", "idp-chooser", "logout", "logged-out",
				    "saml-post",
				    "error"};
const size_t app_pages_count = ARRAY_SIZE(app_pages);

static void worker_free(void *p)
{
	struct worker *w = p;
	if (w == NULL)
		return;
	kv_free(w->kv);
	store_free(w->store);
	free(w);
}

int app_init(struct app *app, const struct config *cfg, struct sp *sp,
	     struct templates *templates, const char **error_r)
{
	memset(app, 0, sizeof(*app));
	app->cfg = cfg;
	app->sp = sp;
	app->templates = templates;
	const char *url = cfg->http.public_url;
	app->secure_cookie = strncmp(url, "https://", 8) == 0;
	const char *host = strstr(url, "://") + 3;
	const char *slash = strchr(host, '/');
	app->public_origin = slash != NULL ? xstrndup(url, (size_t)(slash - url)) : xstrdup(url);
	app->cookie_path = xstrdup(slash != NULL ? slash : "/");
	pthread_mutex_init(&app->sp_lock, NULL);
	if (pthread_key_create(&app->worker_key, worker_free) != 0) {
		*error_r = "cannot create thread-local storage";
		return -1;
	}
	return 0;
}

void app_deinit(struct app *app)
{
	worker_free(pthread_getspecific(app->worker_key));
	pthread_setspecific(app->worker_key, NULL);
	pthread_key_delete(app->worker_key);
	pthread_mutex_destroy(&app->sp_lock);
	sp_unref(app->sp);
	free(app->public_origin);
	free(app->cookie_path);
}

struct worker *app_worker(struct app *app)
{
	struct worker *w = pthread_getspecific(app->worker_key);
	if (w != NULL)
		return w;
	w = xcalloc(1, sizeof(*w));
	const struct config *c = app->cfg;
	const char *error;
	struct kv_options ko = {c->redis.url, c->redis.prefix, (int)c->redis.timeout_ms};
	struct store_options so = {c->redis.url, c->redis.prefix, (int)c->redis.timeout_ms};
	/* Both only parse the URL, which the configuration check accepted already. */
	if (kv_open(&ko, &w->kv, &error) < 0 || store_open(&so, &w->store, &error) < 0)
		abort();
	pthread_setspecific(app->worker_key, w);
	return w;
}

struct sp *app_sp(struct app *app)
{
	pthread_mutex_lock(&app->sp_lock);
	struct sp *sp = sp_ref(app->sp);
	pthread_mutex_unlock(&app->sp_lock);
	return sp;
}

void app_swap_sp(struct app *app, struct sp *sp)
{
	pthread_mutex_lock(&app->sp_lock);
	struct sp *old = app->sp;
	app->sp = sp;
	pthread_mutex_unlock(&app->sp_lock);
	sp_unref(old);
}
