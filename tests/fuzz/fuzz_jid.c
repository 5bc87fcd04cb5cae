/* Fuzz target: the JID rules every component applies to user names, compared with each
 * other: common/'s jid_bare_normalize (token ownership), the SASL plugin's and
 * samlgw-authd's allocation-free user_map_normalize / user_map_apply (when sasl-plugin is
 * built) and xmpp-core's stanza address parser xjid_parse (when xmpp-core is built).
 * They must agree: a user name one of them maps to a JID must map to the same JID in the
 * others, and every result must be a fixed point (normalising it again changes nothing).
 *
 * Byte 0 picks the user map (jid; jid with domain example.org; localpart of example.org;
 * jid restricted to example.org); the rest is the name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jid.h"
#ifdef FUZZ_HAVE_USER_MAP
#include "user_map.h"
#endif
#ifdef FUZZ_HAVE_XJID
#include "jidx.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* jid_bare_normalize, checking that its result is its own normal form. */
static char *normalize(const char *text)
{
	char *jid = NULL;
	const char *error = NULL;
	if (jid_bare_normalize(text, &jid, &error) < 0) {
		if (error == NULL)
			abort();
		return NULL;
	}
	char *again = NULL;
	if (jid_bare_normalize(jid, &again, &error) < 0 || strcmp(again, jid) != 0)
		abort();
	free(again);
	const char *at = strchr(jid, '@');
	if (!jid_domain_valid(at + 1, &error) ||
	    !jid_localpart_valid(jid, (size_t)(at - jid), &error))
		abort();
	return jid;
}

#ifdef FUZZ_HAVE_USER_MAP
static void check_user_map(unsigned mode, const char *text, size_t len, const char *bare)
{
	char out[USER_MAP_BUF];
	const char *error = NULL;
	int r = user_map_normalize(text, len, out, &error);
	/* The same rules; only the length cap is counted before the trailing dot goes. */
	if ((r == 0) != (bare != NULL) || (r == 0 && strcmp(out, bare) != 0))
		abort();

	struct user_map map = {
		.mode = (mode & 3) == 2 ? USER_MODE_LOCALPART : USER_MODE_JID,
		.domain = (mode & 3) != 0 ? "example.org" : NULL,
		.restrict_domain = (mode & 3) == 3,
	};
	if (user_map_check(&map, &error) < 0)
		abort();
	char jid[USER_MAP_BUF], name[USER_MAP_BUF];
	if (user_map_apply(&map, text, len, jid, name, &error) < 0)
		return;
	/* A mapped JID is a normal bare JID, of the required domain, and the application's
	 * user name is that JID or its localpart. */
	char *again = normalize(jid);
	if (again == NULL || strcmp(again, jid) != 0)
		abort();
	free(again);
	const char *at = strchr(jid, '@');
	const char *required = user_map_required_domain(&map);
	if (required != NULL && strcmp(at + 1, required) != 0)
		abort();
	if (map.mode == USER_MODE_LOCALPART
		    ? strlen(name) != (size_t)(at - jid) || strncmp(name, jid, strlen(name)) != 0
		    : strcmp(name, jid) != 0)
		abort();
	/* A name that carries its domain maps to its own normal form. */
	if (memchr(text, '@', len) != NULL && (bare == NULL || strcmp(jid, bare) != 0))
		abort();
}
#endif

#ifdef FUZZ_HAVE_XJID
static void check_xjid(const char *text, const char *bare)
{
	struct xjid j;
	const char *error = NULL;
	if (xjid_parse(text, &j, &error) < 0) {
		if (error == NULL)
			abort();
		/* What the token store accepts as a user, stanzas may address. */
		if (bare != NULL)
			abort();
		return;
	}
	if (j.domain == NULL || j.bare == NULL || j.full == NULL)
		abort();
	if (!resource_valid(j.resource != NULL ? j.resource : "x"))
		abort();
	/* The address of a user with a localpart and no resource is the user's JID. */
	if (j.local != NULL && j.resource == NULL && bare != NULL && strcmp(j.bare, bare) != 0)
		abort();
	/* Parsing the normal form again gives the same addresses. */
	struct xjid k;
	if (xjid_parse(j.full, &k, &error) < 0 || strcmp(k.full, j.full) != 0 ||
	    strcmp(k.bare, j.bare) != 0)
		abort();
	xjid_clear(&k);
	xjid_clear(&j);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	unsigned mode = data[0];
	data++;
	size--;
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	size_t len = strlen(text); /* up to the first NUL, as C callers see it */
	char *bare = normalize(text);
	const char *error;
	(void)jid_domain_valid(text, &error);
	(void)jid_localpart_valid(text, len, &error);
#ifdef FUZZ_HAVE_USER_MAP
	check_user_map(mode, text, len, bare);
#else
	(void)mode;
#endif
#ifdef FUZZ_HAVE_XJID
	check_xjid(text, bare);
#endif
	free(bare);
	free(text);
	return 0;
}
