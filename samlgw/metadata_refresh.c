/* The metadata refresh thread (see metadata_refresh.h). */
#include "metadata_refresh.h"
#include "log.h"
#include "metadata_fetch.h"
#include "util.h"
#include "xml.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RETRY_MAX_S 600 /* after a failure, try again within this */
#define WATCH_MAX_S 3600

DEFINE_ERROR_FORMATTER(fmt_error, error_buf, 900)

struct metadata_refresh {
	const struct config *cfg;
	struct app *app; /* NULL until started */
	pthread_mutex_t load_lock; /* loads, renames and swaps */
	pthread_mutex_t mu;	   /* the fields below */
	pthread_cond_t cond;
	bool stop, wake, started;
	time_t next_fetch;
	time_t expiry_logged; /* the validUntil already reported as passed */
	struct fetch_validators validators; /* of the copy on disk (fetch thread only) */
	pthread_t thread;
};

int metadata_refresh_new(const struct config *cfg, struct metadata_refresh **r_r,
			 const char **error_r)
{
	if (cfg->saml.metadata_url != NULL && metadata_fetch_init(error_r) < 0)
		return -1;
	struct metadata_refresh *r = xcalloc(1, sizeof(*r));
	r->cfg = cfg;
	pthread_mutex_init(&r->load_lock, NULL);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cond, NULL);
	struct stat st;
	if (stat(cfg->saml.idp_metadata, &st) == 0) {
		r->validators.modified = st.st_mtime;
		r->next_fetch = st.st_mtime + (time_t)cfg->saml.metadata_refresh;
	}
	*r_r = r;
	return 0;
}

void metadata_refresh_free(struct metadata_refresh *r)
{
	if (r == NULL)
		return;
	if (r->started) {
		pthread_mutex_lock(&r->mu);
		__atomic_store_n(&r->stop, true, __ATOMIC_SEQ_CST); /* read by metadata_fetch too */
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->thread, NULL);
	}
	if (r->cfg->saml.metadata_url != NULL)
		metadata_fetch_deinit();
	free(r->validators.etag);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->load_lock);
	free(r);
}

void metadata_refresh_lock(struct metadata_refresh *r)
{
	pthread_mutex_lock(&r->load_lock);
}

void metadata_refresh_unlock(struct metadata_refresh *r)
{
	pthread_mutex_unlock(&r->load_lock);
}

void metadata_refresh_wake(struct metadata_refresh *r)
{
	pthread_mutex_lock(&r->mu);
	r->wake = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
}

static void log_failed(const char *reason)
{
	log_event(LOG_LEVEL_ERROR, "metadata_fetch_failed", "reason", reason, NULL);
}

/* Make the rename durable: fsync the folder that holds path. */
static void sync_folder(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

/* One fetch: download into a temporary file next to idp_metadata, check it with
 * sp_load_from, rename it over idp_metadata, and swap it in when the app runs. Returns
 * FETCH_OK with *sp_r (a reference for the caller) when a new copy was installed,
 * FETCH_NOT_MODIFIED, or FETCH_FAILED with *error_r; nothing changes unless FETCH_OK. */
static enum fetch_result fetch_once(struct metadata_refresh *r, struct sp **sp_r,
				    const char **error_r)
{
	const struct config *cfg = r->cfg;
	const char *backing = cfg->saml.idp_metadata;
	char *tmp = xasprintf("%s.fetch-XXXXXX", backing);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		*error_r = fmt_error("cannot create a file next to %s: %s", backing,
				     strerror(errno));
		free(tmp);
		return FETCH_FAILED;
	}
	close(fd);
	const char *error, *setting;
	enum fetch_result res = metadata_fetch(cfg->saml.metadata_url, tmp, METADATA_FILE_MAX,
					       &r->validators, &r->stop, &error);
	if (res == FETCH_FAILED) {
		*error_r = fmt_error("%s", error);
		goto out;
	}
	if (res == FETCH_NOT_MODIFIED) {
		utimensat(AT_FDCWD, backing, NULL, 0); /* the copy on disk is current */
		goto out;
	}
	struct sp *fresh;
	pthread_mutex_lock(&r->load_lock);
	if (sp_load_from(cfg, tmp, &fresh, &setting, &error) < 0) {
		pthread_mutex_unlock(&r->load_lock);
		*error_r = fmt_error("%s: %s", setting, error);
		/* Ask unconditionally next time, so a bad copy is reported until fixed. */
		free(r->validators.etag);
		r->validators.etag = NULL;
		r->validators.modified = 0;
		res = FETCH_FAILED;
		goto out;
	}
	if (rename(tmp, backing) < 0) {
		pthread_mutex_unlock(&r->load_lock);
		*error_r = fmt_error("cannot rename the fetched metadata to %s: %s", backing,
				     strerror(errno));
		sp_unref(fresh);
		res = FETCH_FAILED;
		goto out;
	}
	sync_folder(backing);
	if (r->app != NULL)
		app_swap_sp(r->app, sp_ref(fresh));
	pthread_mutex_unlock(&r->load_lock);
	*sp_r = fresh;
out:
	unlink(tmp); /* fails with ENOENT after the rename */
	free(tmp);
	return res;
}

static void log_installed(const struct sp *sp, const char *when)
{
	char nidps[24], nexpired[24], until[32] = "none";
	snprintf(nidps, sizeof(nidps), "%zu", sp->idps->n);
	snprintf(nexpired, sizeof(nexpired), "%zu", sp->idps->n_expired);
	if (sp->idps->valid_until != 0)
		xml_format_time(sp->idps->valid_until, until, sizeof(until));
	log_event(LOG_LEVEL_INFO, "metadata_fetched", "when", when, "idps", nidps,
		  "expired_entries", nexpired, "valid_until", until, NULL);
}

static bool backing_due(const struct config *cfg)
{
	struct stat st;
	return stat(cfg->saml.idp_metadata, &st) < 0 ||
	       st.st_mtime + (time_t)cfg->saml.metadata_refresh <= time(NULL);
}

struct sp *metadata_refresh_at_start(struct metadata_refresh *r)
{
	if (r->cfg->saml.metadata_url == NULL || !backing_due(r->cfg))
		return NULL;
	struct sp *sp = NULL;
	const char *error;
	time_t now = time(NULL);
	enum fetch_result res = fetch_once(r, &sp, &error);
	long long refresh = r->cfg->saml.metadata_refresh;
	r->next_fetch = now + (time_t)(res == FETCH_FAILED && refresh > RETRY_MAX_S ? RETRY_MAX_S
										    : refresh);
	if (res == FETCH_FAILED)
		log_failed(error);
	else if (res == FETCH_OK)
		log_installed(sp, "start");
	return sp;
}

/* Log once when the metadata in service passed its validUntil; returns the next time
 * worth looking again (0: none). */
static time_t watch_expiry(struct metadata_refresh *r, time_t now)
{
	struct sp *sp = app_sp(r->app);
	time_t until = sp->idps->valid_until, next = 0;
	if (until != 0 && until <= now) {
		if (r->expiry_logged != until) {
			char buf[32];
			xml_format_time(until, buf, sizeof(buf));
			log_event(LOG_LEVEL_ERROR, "metadata_expired", "valid_until", buf,
				  "effect", "no IdP of it is trusted until fresh metadata loads",
				  NULL);
			r->expiry_logged = until;
		}
	} else if (until != 0) {
		next = until;
	}
	sp_unref(sp);
	return next;
}

static void *refresh_thread(void *ctx)
{
	struct metadata_refresh *r = ctx;
	const bool fetching = r->cfg->saml.metadata_url != NULL;
	const long long refresh = r->cfg->saml.metadata_refresh;
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		time_t now = time(NULL);
		if (fetching && (r->wake || now >= r->next_fetch)) {
			r->wake = false;
			pthread_mutex_unlock(&r->mu);
			struct sp *sp = NULL;
			const char *error;
			enum fetch_result res = fetch_once(r, &sp, &error);
			if (res == FETCH_FAILED)
				log_failed(error);
			else if (res == FETCH_OK)
				log_installed(sp, "refresh");
			else
				log_event(LOG_LEVEL_DEBUG, "metadata_not_modified", NULL);
			sp_unref(sp);
			pthread_mutex_lock(&r->mu);
			r->next_fetch = time(NULL) + (time_t)(res == FETCH_FAILED && refresh > RETRY_MAX_S
								   ? RETRY_MAX_S
								   : refresh);
			continue;
		}
		r->wake = false;
		time_t deadline = now + WATCH_MAX_S;
		time_t until = watch_expiry(r, now);
		if (until != 0 && until < deadline)
			deadline = until;
		if (fetching && r->next_fetch < deadline)
			deadline = r->next_fetch;
		struct timespec ts = {.tv_sec = deadline};
		while (!r->stop && !r->wake && time(NULL) < deadline)
			if (pthread_cond_timedwait(&r->cond, &r->mu, &ts) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int metadata_refresh_start(struct metadata_refresh *r, struct app *app, const char **error_r)
{
	r->app = app;
	int rc = pthread_create(&r->thread, NULL, refresh_thread, r);
	if (rc != 0) {
		*error_r = fmt_error("cannot start the metadata refresh thread: %s", strerror(rc));
		return -1;
	}
	r->started = true;
	return 0;
}
