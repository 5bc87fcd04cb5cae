/* What every request handler of samlgw sees: the configuration, the current SP (swapped
 * on SIGHUP), the templates, the counters, and per-thread connections to Redis. */
#ifndef SAMLGW_APP_H
#define SAMLGW_APP_H

#include <pthread.h>
#include <stdbool.h>

#include "config.h"
#include "kv.h"
#include "metrics.h"
#include "sp.h"
#include "store.h"
#include "template.h"

struct app {
	const struct config *cfg;
	char *public_origin; /* scheme://host[:port] of public_url, for Origin checks */
	char *cookie_path;   /* the path of public_url, or "/" */
	bool secure_cookie;  /* public_url is https */
	pthread_mutex_t sp_lock;
	struct sp *sp;       /* current; take a reference with app_sp() */
	struct templates *templates;
	struct metrics metrics;
	pthread_key_t worker_key;
};

/* This thread's Redis connections (made on first use, freed when the thread ends). */
struct worker {
	struct kv *kv;
	struct token_store *store;
};

int app_init(struct app *app, const struct config *cfg, struct sp *sp,
	     struct templates *templates, const char **error_r);
void app_deinit(struct app *app);
struct worker *app_worker(struct app *app);
/* A reference to the current SP (release with sp_unref). */
struct sp *app_sp(struct app *app);
/* Install a new SP; the old one goes when its last request is done. */
void app_swap_sp(struct app *app, struct sp *sp);

/* Every page template the handlers render (page_render in web.c, account.c, pages.c):
 * samlgw checks at start-up that each one is there. Add a page here when adding one. */
extern const char *const app_pages[];
extern const size_t app_pages_count;

/* The request handler behind every route (web.c). */
struct http_request;
struct http_reply;
void web_handle(void *app, struct http_request *req, struct http_reply *reply);
void web_done(void *app, const struct http_request *req, unsigned status);

#endif
