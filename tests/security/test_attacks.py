"""The catalogue of attacks.py against samlgw's ACS, each next to its positive control.

For every attack: a fresh AuthnRequest from samlgw A, a valid Response answering it (from
the test IdP, or built with the IdP's key), the attack made from it and posted first, then
the unmodified control posted for the same request. The attack must be refused (403) with
the expected reason and detail in its login_refused log line; the control must then be
accepted (303), which also shows that the refused attack did not use up the request. Where
the attack's signature is one a lax verifier would take (attacks.Attack.xmlsec_valid),
xmlsec1 is asked first to verify it with the key that made it."""
import subprocess
import tempfile
from types import SimpleNamespace

import pytest

import samltest
from attacks import assertion, catalogue, strip_response_signature
from conftest import (describe, idp_response, outcome, post_xml, record, start_login)

CATALOGUE = catalogue()


def _factory(fed, name):
    return {"real": fed.real, "partner": fed.partner, "unbound": fed.unbound}[name]


def _knobs(knobs, ctx, fed):
    k = dict(knobs(ctx) if callable(knobs) else knobs)
    if k.get("signing_key") in ("real", "partner"):
        f = _factory(fed, k["signing_key"])
        k["signing_key"] = (f.key, f.cert)
    if k.get("assertion_issuer") in ("real", "partner"):
        k["assertion_issuer"] = _factory(fed, k["assertion_issuer"]).idp
    return k


def _signed_elements(root):
    """(ID, element) of each element carrying a ds:Signature as a direct child."""
    return [(e.get("ID"), e) for e in root.iter()
            if isinstance(e.tag, str) and e.find(samltest.DS + "Signature") is not None
            and e.get("ID")]


def xmlsec_verifies(xml, cert, node_id):
    """xmlsec1 verifies the signature found from the element whose ID is node_id, trusting
    only cert, with every same-document Reference allowed (URI "" too): (ok, stderr)."""
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        f.write(xml)
        f.flush()
        r = subprocess.run([samltest.XMLSEC1, "--verify", "--enabled-reference-uris",
                            "empty,same-doc", "--enabled-key-data", "raw-x509-cert",
                            "--pubkey-cert-pem", str(cert)] + samltest._id_attr_args()
                           + ["--node-id", node_id, f.name], capture_output=True)
    return r.returncode == 0, r.stderr.decode(errors="replace")


def build(fed, canary, attack):
    """(attack bytes, control bytes, input description) for one attack, both answering
    requests samlgw A really sent."""
    gw = fed.gw
    ctx = SimpleNamespace(idp_key=(fed.idp.key, fed.idp.cert), rogue=fed.rogue,
                          partner=fed.partner, sp_cert=gw.sp_cert, canary=canary.url)
    if attack.source in ("idp", "idp-a"):
        _rid, control = idp_response(fed)
        if attack.source == "idp-a":
            control = samltest.tostring(strip_response_signature(samltest.parse(control)))
    elif attack.source == "factory-r":
        rid, _ = start_login(gw, fed.real.idp)
        control = fed.real.build(in_response_to=rid, sign="response").xml
    else:
        f = _factory(fed, attack.issuer)
        rid, _ = start_login(gw, f.idp)
        bad = f.build(in_response_to=rid, **_knobs(attack.knobs, ctx, fed)).xml
        cf = _factory(fed, attack.control_issuer or attack.issuer)
        crid = rid if cf is f else start_login(gw, cf.idp)[0]
        control = cf.build(in_response_to=crid, **_knobs(attack.control, ctx, fed)).xml
        return bad, control
    bad = attack.transform(samltest.parse(control), ctx)
    if not isinstance(bad, bytes):
        bad = samltest.tostring(bad)
    return bad, control


@pytest.mark.parametrize("attack", CATALOGUE, ids=[a.id for a in CATALOGUE])
def test_attack(fed, canary, attack):
    gw = fed.gw
    bad, control = build(fed, canary, attack)
    if attack.xmlsec_valid:
        cert = fed.idp.cert if attack.xmlsec_valid == "idp" else fed.rogue[1]
        root = samltest.parse(bad)
        signed = _signed_elements(root)
        assert signed, "the attack carries no signature"
        for eid, el in signed:
            ok, err = xmlsec_verifies(bad, cert, eid)
            assert ok, "xmlsec1 does not verify the %s signature of %s: %s" % (
                el.tag.split("}")[1], attack.id, err)
    hits = canary.hits
    got = outcome(gw, post_xml(gw, bad))
    ctl = outcome(gw, post_xml(gw, control))
    matched = (not got.accepted and got.reason == attack.reason and
               (attack.detail is None or attack.detail in (got.detail or "")))
    source = attack.source if attack.issuer == "real" else "%s(%s)" % (attack.source,
                                                                       attack.issuer)
    record(attack.name, source, attack.reason, describe(got),
           "accepted" if ctl.accepted else describe(ctl), matched and ctl.accepted,
           got.detail or "")
    assert not got.accepted, "%s was ACCEPTED: %s" % (attack.id, attack.doc)
    assert got.reason == attack.reason, (attack.id, got.status, got.line)
    if attack.detail is not None:
        assert attack.detail in (got.detail or ""), (attack.id, got.line)
    assert ctl.accepted, ("the control of %s was refused" % attack.id, ctl.line)
    if attack.canary:
        assert canary.hits == hits, "samlgw connected to the canary URL"


def test_catalogue_covers_the_issue():
    """Every shape the issue lists has a row (names as in the table)."""
    names = {a.name for a in CATALOGUE}
    for n in ["xsw%d" % i for i in range(1, 9)] + [
            "signed-then-unsigned-assertion", "signature-stripped",
            "unsigned-then-signed-assertion", "duplicate-id-response", "reference-uri-empty",
            "two-references", "ds-object", "xslt-transform", "xpath-transform",
            "keyinfo-key-not-in-metadata", "signed-by-another-federation-idp",
            "assertion-issuer-differs", "comment-in-nameid", "comment-in-scoped-value",
            "doctype", "xxe-file", "billion-laughs", "nesting-past-cap",
            "status-not-success-with-assertion", "undecryptable-beside-cleartext", "rsa-sha1",
            "rsa-md5", "holder-of-key", "eppn-outside-scope", "eppn-second-at",
            "partner-into-unbound-domain"]:
        assert n in names, n
    assert len({a.id for a in CATALOGUE}) == len(CATALOGUE), "two attacks share an id"
