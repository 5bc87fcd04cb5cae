/* XML signature verification with xmlsec1 (see xmlsig.h).
 *
 * Every verification runs in its own xmlSecDSigCtx with the candidate key set directly
 * (no keys manager, so KeyInfo in the message is never used to pick or trust a key), only
 * same-document references, and an allow list of transforms. */
#include "xmlsig.h"
#include "xml.h"
#include "util.h"

#include <string.h>

#include <openssl/evp.h>
#include <xmlsec/base64.h>
#include <xmlsec/crypto.h>
#include <xmlsec/keyinfo.h>
#include <xmlsec/keysmngr.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmltree.h>

#define CERT_DER_MAX (64 * 1024)

/* Keep only the public key of a key loaded from a certificate: verification needs no
 * more, and duplicating the key for each verification then takes a reference instead of
 * copying (and re-decoding) the certificate. Takes over key. */
static int keys_add(struct xmlsig_keys *keys, xmlSecKeyPtr key, const char **error_r)
{
	xmlSecKeyDataPtr value = xmlSecKeyGetValue(key);
	xmlSecKeyDataPtr copy = value != NULL ? xmlSecKeyDataDuplicate(value) : NULL;
	xmlSecKeyPtr bare = copy != NULL ? xmlSecKeyCreate() : NULL;
	xmlSecKeyDestroy(key);
	if (bare == NULL || xmlSecKeySetValue(bare, copy) < 0) {
		if (bare != NULL)
			xmlSecKeyDestroy(bare);
		if (copy != NULL)
			xmlSecKeyDataDestroy(copy);
		*error_r = "the certificate holds no usable public key";
		return -1;
	}
	keys->v = xrealloc(keys->v, (keys->n + 1) * sizeof(*keys->v));
	keys->v[keys->n++] = bare;
	return 0;
}

int xmlsig_keys_add_cert_b64(struct xmlsig_keys *keys, const char *b64, const char **error_r)
{
	size_t len = strlen(b64);
	if (len > CERT_DER_MAX * 2) {
		*error_r = "the certificate is too large";
		return -1;
	}
	/* Strip the white space metadata is full of, then decode. */
	char *clean = xcalloc(1, len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (b64[i] != ' ' && b64[i] != '\n' && b64[i] != '\r' && b64[i] != '\t')
			clean[n++] = b64[i];
	}
	unsigned char *der = xcalloc(1, n + 3);
	int dlen = EVP_DecodeBlock(der, (const unsigned char *)clean, (int)n);
	if (dlen > 0 && n >= 2 && clean[n - 1] == '=')
		dlen -= clean[n - 2] == '=' ? 2 : 1;
	free(clean);
	if (dlen <= 0) {
		free(der);
		*error_r = "the certificate is not base64";
		return -1;
	}
	xmlSecKeyPtr key = xmlSecCryptoAppKeyLoadMemory(der, (xmlSecSize)dlen,
							xmlSecKeyDataFormatCertDer, NULL, NULL,
							NULL);
	free(der);
	if (key == NULL) {
		*error_r = "the certificate cannot be read";
		return -1;
	}
	return keys_add(keys, key, error_r);
}

int xmlsig_keys_add_cert_file(struct xmlsig_keys *keys, const char *path, const char **error_r)
{
	xmlSecKeyPtr key = xmlSecCryptoAppKeyLoad(path, xmlSecKeyDataFormatCertPem, NULL, NULL,
						  NULL);
	if (key == NULL) {
		*error_r = "cannot read the certificate (PEM)";
		return -1;
	}
	return keys_add(keys, key, error_r);
}

void xmlsig_keys_clear(struct xmlsig_keys *keys)
{
	for (size_t i = 0; i < keys->n; i++)
		xmlSecKeyDestroy(keys->v[i]);
	free(keys->v);
	keys->v = NULL;
	keys->n = 0;
}

static bool is_sha1(const char *alg)
{
	return alg != NULL && (strcmp(alg, "http://www.w3.org/2000/09/xmldsig#sha1") == 0 ||
			       strcmp(alg, "http://www.w3.org/2000/09/xmldsig#rsa-sha1") == 0 ||
			       strcmp(alg, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1") == 0 ||
			       strcmp(alg, "http://www.w3.org/2000/09/xmldsig#dsa-sha1") == 0);
}

/* The structure around the signature, checked before any crypto. */
static int check_shape(xmlNode *elem, xmlNode *sig, bool allow_sha1, const char **error_r)
{
	const char *id = xml_attr(elem, "ID");
	if (id == NULL || *id == '\0') {
		*error_r = "the signed element has no ID";
		return -1;
	}
	xmlNode *si = xml_child(sig, NS_DS, "SignedInfo");
	if (si == NULL) {
		*error_r = "the signature has no SignedInfo";
		return -1;
	}
	if (xml_count_children(si, NS_DS, "Reference") != 1) {
		*error_r = "the signature does not have exactly one Reference";
		return -1;
	}
	xmlNode *ref = xml_child(si, NS_DS, "Reference");
	const char *uri = xml_attr(ref, "URI");
	if (uri == NULL || uri[0] != '#' || strcmp(uri + 1, id) != 0) {
		*error_r = "the signature's Reference does not point at the element it is in";
		return -1;
	}
	xmlNode *sm = xml_child(si, NS_DS, "SignatureMethod");
	xmlNode *dm = xml_child(ref, NS_DS, "DigestMethod");
	if (sm == NULL || dm == NULL) {
		*error_r = "the signature lacks SignatureMethod or DigestMethod";
		return -1;
	}
	if (!allow_sha1 &&
	    (is_sha1(xml_attr(sm, "Algorithm")) || is_sha1(xml_attr(dm, "Algorithm")))) {
		*error_r = "the signature uses SHA-1, which is not allowed (saml.allow_sha1)";
		return -1;
	}
	return 0;
}

static int enable_transforms(xmlSecDSigCtxPtr ctx, bool allow_sha1)
{
	const xmlSecTransformId c14n[] = {
		xmlSecTransformExclC14NId, xmlSecTransformExclC14NWithCommentsId,
		xmlSecTransformInclC14NId, xmlSecTransformInclC14NWithCommentsId,
	};
	const xmlSecTransformId sign[] = {
		xmlSecTransformRsaSha256Id, xmlSecTransformRsaSha384Id,
		xmlSecTransformRsaSha512Id, xmlSecTransformEcdsaSha256Id,
		xmlSecTransformEcdsaSha384Id, xmlSecTransformEcdsaSha512Id,
	};
	const xmlSecTransformId digest[] = {
		xmlSecTransformSha256Id, xmlSecTransformSha384Id, xmlSecTransformSha512Id,
	};
	int r = 0;
	for (size_t i = 0; i < ARRAY_SIZE(c14n); i++) {
		r |= xmlSecDSigCtxEnableSignatureTransform(ctx, c14n[i]);
		r |= xmlSecDSigCtxEnableReferenceTransform(ctx, c14n[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(sign); i++)
		r |= xmlSecDSigCtxEnableSignatureTransform(ctx, sign[i]);
	for (size_t i = 0; i < ARRAY_SIZE(digest); i++)
		r |= xmlSecDSigCtxEnableReferenceTransform(ctx, digest[i]);
	r |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId);
	if (allow_sha1) {
		r |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha1Id);
		r |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha1Id);
	}
	ctx->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
	return r < 0 ? -1 : 0;
}

int xmlsig_verify(xmlNode *elem, const struct xmlsig_keys *keys, bool allow_sha1,
		  const char **error_r)
{
	if (xml_count_children(elem, NS_DS, "Signature") != 1) {
		*error_r = "the element does not carry exactly one Signature";
		return -1;
	}
	xmlNode *sig = xml_child(elem, NS_DS, "Signature");
	if (check_shape(elem, sig, allow_sha1, error_r) < 0)
		return -1;
	if (keys->n == 0) {
		*error_r = "the IdP's metadata has no signing key";
		return -1;
	}
	*error_r = "the signature does not verify with any of the IdP's signing keys";
	for (size_t i = 0; i < keys->n; i++) {
		xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
		if (ctx == NULL) {
			*error_r = "cannot set up signature verification";
			return -1;
		}
		int ok = -1;
		if (enable_transforms(ctx, allow_sha1) < 0) {
			*error_r = "cannot set up signature verification";
		} else if ((ctx->signKey = xmlSecKeyDuplicate(keys->v[i])) != NULL &&
			   xmlSecDSigCtxVerify(ctx, sig) >= 0 &&
			   ctx->status == xmlSecDSigStatusSucceeded &&
			   xmlSecPtrListGetSize(&ctx->signedInfoReferences) == 1) {
			ok = 0;
		}
		xmlSecDSigCtxDestroy(ctx);
		if (ok == 0)
			return 0;
	}
	return -1;
}
