/* Keeping the IdP metadata current while samlgw runs: fetching saml.metadata_url on a
 * schedule (and on demand, after SIGHUP) into a temporary file next to saml.idp_metadata,
 * checking it exactly as a reload would (sp_load_from: signature with metadata_cert,
 * validUntil, every IdP), and only then renaming it over idp_metadata and swapping it in
 * (app_swap_sp: requests in flight keep their reference). A failed fetch or check is
 * logged (event=metadata_fetch_failed) and changes nothing. It also watches the validUntil
 * of the metadata in service and logs event=metadata_expired once it passes (from then on
 * idp_set_find finds no IdP in it). All loads and swaps, the SIGHUP reload's included, are
 * serialised by metadata_refresh_lock. */
#ifndef SAMLGW_METADATA_REFRESH_H
#define SAMLGW_METADATA_REFRESH_H

#include "app.h"
#include "config.h"
#include "sp.h"

struct metadata_refresh;

/* cfg must outlive it. Calls metadata_fetch_init when a URL is set. */
int metadata_refresh_new(const struct config *cfg, struct metadata_refresh **r_r,
			 const char **error_r);
/* Stops and joins the thread; accepts NULL. */
void metadata_refresh_free(struct metadata_refresh *r);

/* Before serving: when metadata_url is set and idp_metadata is missing or older than
 * metadata_refresh, fetch and check it now. Returns the SP loaded from the new copy (now
 * idp_metadata), or NULL when nothing new was installed (why is logged). */
struct sp *metadata_refresh_at_start(struct metadata_refresh *r);

/* Start the thread, which swaps what it installs into app. */
int metadata_refresh_start(struct metadata_refresh *r, struct app *app, const char **error_r);

/* Around a load and swap done elsewhere (the SIGHUP reload in main.c). */
void metadata_refresh_lock(struct metadata_refresh *r);
void metadata_refresh_unlock(struct metadata_refresh *r);

/* Fetch now (when a URL is set) and look at validUntil again. */
void metadata_refresh_wake(struct metadata_refresh *r);

#endif
