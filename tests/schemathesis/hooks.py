"""Schemathesis hooks of `make schemathesis` (scripts/schemathesis.sh): what API Gateway and a
careful caller do between the fuzzer and the local stack, and nothing else.

- Identity, as API Gateway gives it: the local stack takes a JWT route's account from
  `x-tollgate-account` and the operator's identity from `x-tollgate-operator` (stand-ins for what
  the gateway verifies), so a request carries them only when it carries the credential they
  stand for (`Authorization`): one without it is refused as the gateway refuses it. A key route
  gets a real key, made for another account before the run.
- Values no schema can state: a redirect on the deployment's allowed origin (the generated string
  becomes its path), an expiry in the future, a cursor an earlier page gave (none: a generated
  one is valid only in shape), an adoption map naming each customer once, the deployment's
  `livemode` and Stripe's signature on a webhook.
- `DELETE /account` on an account of its own, so it never deletes the one the others use.
"""

import hashlib
import hmac
import json
import os
import time
from urllib.parse import quote

import schemathesis

ACCOUNT = os.environ["TOLLGATE_ST_ACCOUNT"]
DELETED_ACCOUNT = ACCOUNT + "-deleted"
API_KEY = os.environ["TOLLGATE_ST_API_KEY"]
ORIGIN = os.environ["TOLLGATE_ST_ORIGIN"]
WEBHOOK_SECRET = os.environ["TOLLGATE_ST_WEBHOOK_SECRET"]
OPERATOR = "schemathesis"

REDIRECTS = ("success_url", "cancel_url", "return_url")
# Key and grant expiries: in the future and at most ten years ahead (nine, to leave room).
NINE_YEARS = 9 * 365 * 86400


def _header(headers, name):
    """The name under which `headers` holds `name` (any case), or None."""
    return next((key for key in headers if key.lower() == name.lower()), None)


def _schemes(case):
    return {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}


def _positive(case):
    return case.meta is not None and case.meta.generation.mode.is_positive


def _identity(case):
    headers = case.headers if case.headers is not None else {}
    authorization = _header(headers, "Authorization")
    schemes = _schemes(case)
    if authorization is None:
        return
    if "jwt" in schemes:
        deleting = case.method.upper() == "DELETE" and case.path == "/account"
        headers["x-tollgate-account"] = DELETED_ACCOUNT if deleting else ACCOUNT
    elif "apiKey" in schemes:
        headers[authorization] = "Bearer " + API_KEY
    elif "sigv4" in schemes:
        headers["x-tollgate-operator"] = OPERATOR
    case.headers = headers


def _body(case):
    body = case.body
    if not isinstance(body, dict):
        return
    for field in REDIRECTS:
        if isinstance(body.get(field), str):
            body[field] = ORIGIN + "/" + quote(body[field], safe="")
    if isinstance(body.get("map"), list):
        # Each customer once (JSON Schema cannot say a pair's first item is unique).
        seen = set()
        kept = []
        for pair in body["map"]:
            customer = pair[0] if isinstance(pair, list) and pair and isinstance(pair[0], str) else None
            if customer is None or customer not in seen:
                kept.append(pair)
            seen.add(customer)
        body["map"] = kept
    expires_at = body.get("expires_at")
    if isinstance(expires_at, int) and not isinstance(expires_at, bool):
        body["expires_at"] = int(time.time()) + 3600 + expires_at % NINE_YEARS


def _cursor(case):
    if _positive(case) and isinstance(case.query, dict):
        case.query.pop("cursor", None)


def _signed_webhook(case, kwargs):
    headers = case.headers if case.headers is not None else {}
    signature = _header(headers, "Stripe-Signature")
    if signature is None or "stripeSignature" not in _schemes(case):
        return
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("livemode"), bool):
        body["livemode"] = False
    try:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    except TypeError:
        return  # no body at all: sent unsigned, refused as Stripe's could never be
    timestamp = str(int(time.time()))
    mac = hmac.new(WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + payload, hashlib.sha256)
    headers[signature] = f"t={timestamp},v1={mac.hexdigest()}"
    case.headers = headers
    kwargs["data"] = payload


@schemathesis.hook
def before_call(context, case, kwargs):
    _identity(case)
    _body(case)
    _cursor(case)
    _signed_webhook(case, kwargs)
