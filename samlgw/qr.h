/* QR codes for the account page: the provisioning text a phone's chat client scans
 * (Conversations' {"protocol":"xmpp","address":JID,"password":TOKEN}), drawn as a compact
 * inline SVG with libqrencode. */
#ifndef SAMLGW_QR_H
#define SAMLGW_QR_H

/* Longer texts are refused before libqrencode sees them (a QR code holds at most 2,953
 * bytes; at the error correction level used here, 2,331). */
#define QR_TEXT_MAX 4096

/* Draw text as an SVG element for inline use in HTML: one path of dark modules on a white
 * square, a four-module quiet zone, crisp edges, role="img" and a <title> ("QR code").
 * Returns 0 with *svg_r (caller frees; it encodes text, so wipe it if text is a secret),
 * or -1 with *error_r (static text). */
int qr_svg(const char *text, char **svg_r, const char **error_r);
/* The same with the given <title> (plain text; escaped here), e.g. a translated one. */
int qr_svg_titled(const char *text, const char *title, char **svg_r, const char **error_r);

/* The provisioning JSON for jid and password, strings escaped per RFC 8259.
 * Returns 0 with *json_r (caller wipes and frees: it holds the password), or -1 with
 * *error_r when either is empty, too long or not valid UTF-8. */
int qr_xmpp_provisioning(const char *jid, const char *password, char **json_r,
			 const char **error_r);

#endif
