/* Full JIDs as they appear in stanza addresses: [localpart@]domain[/resource].
 * Normalised the way the token store keys users (common/jid.h): ASCII letters in the
 * localpart and domain lowercased, a trailing dot dropped from the domain. */
#ifndef XMPP_JIDX_H
#define XMPP_JIDX_H

#define RESOURCE_MAX 1023

struct xjid {
	char *local;    /* NULL: none */
	char *domain;
	char *resource; /* NULL: none */
	char *bare;     /* local@domain, or domain */
	char *full;     /* bare[/resource] */
};

/* Returns 0 with *jid filled (release with xjid_clear), or -1 with *error_r (static). */
int xjid_parse(const char *text, struct xjid *jid, const char **error_r);
void xjid_clear(struct xjid *jid);

/* True when text is an acceptable resourcepart (1..1023 bytes of printable UTF-8). */
int resource_valid(const char *text);

#endif
