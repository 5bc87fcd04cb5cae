/* Fuzz target: single logout messages as /saml/slo reads them (slo_msg_read), with the SP
 * and IdP of tests/fuzz/acs/ and a fixed clock. The first input byte picks the form:
 * bit 0 a LogoutRequest (else a LogoutResponse), bit 1 the HTTP-Redirect binding (the
 * rest is the SAMLRequest/SAMLResponse value, base64 of raw DEFLATE, with a query string
 * made from it) or HTTP-POST (the rest is the base64 value; with bit 2 it is the XML
 * itself, base64-encoded here so that the parser is reached). No network, no Redis.
 * FUZZ_SLO_VERBOSE=1 prints each input's outcome on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fuzz_sp.h"
#include "redirect_sign.h"
#include "slo_msg.h"
#define SLO_URL "https://chat.example.org/saml/slo"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp *sp = fuzz_sp();
	if (size < 1 || size > 4 * SLO_MSG_MAX)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	bool request = (mode & 1) != 0, redirect = (mode & 2) != 0, xml = (mode & 4) != 0;
	char *value;
	if (xml && !redirect) {
		value = calloc(1, (size + 2) / 3 * 4 + 1);
		if (value == NULL)
			return 0;
		EVP_EncodeBlock((unsigned char *)value, data, (int)size);
	} else {
		value = calloc(1, size + 1);
		if (value == NULL)
			return 0;
		memcpy(value, data, size);
	}
	/* The query the Redirect signature would cover: the parameter as sent, plus a
	 * SigAlg and a Signature, so that the verification path runs too. */
	char *query = NULL;
	if (redirect) {
		char *enc = redirect_url_encode((const unsigned char *)value, strlen(value));
		if ((query = malloc(strlen(enc) + 200)) != NULL)
			sprintf(query, "%s=%s&SigAlg=http%%3A%%2F%%2Fwww.w3.org%%2F2001%%2F04%%2F"
				"xmldsig-more%%23rsa-sha256&Signature=AAAA",
				request ? "SAMLRequest" : "SAMLResponse", enc);
		free(enc);
	}
	struct slo_msg m;
	memset(&m, 0, sizeof(m));
	enum slo_refusal reason;
	const char *error = NULL;
	char *issuer = NULL;
	if (!redirect || query != NULL) {
		int r = slo_msg_read(sp, SLO_URL, value, request, query, "relay", FUZZ_NOW, &m,
				     &reason, &error, &issuer);
		if (getenv("FUZZ_SLO_VERBOSE") != NULL)
			fprintf(stderr, "fuzz_slo: mode %u: %s\n", mode,
				r == 0 ? "accepted" : slo_refusal_name(reason));
		if (r == 0)
			slo_msg_clear(&m);
	}
	free(issuer);
	free(query);
	free(value);
	return 0;
}
