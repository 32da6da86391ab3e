"""The `auth` header: a ready JWT from settings, or one minted per request from credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

import msgspec
from requests import PreparedRequest
from requests.auth import AuthBase

TOKEN_LIFETIME_SECONDS = 300  # short: the API caps exp at one hour ahead when jti is enforced
# The JOSE header of every token, as PyJWT writes it for HS256: base64url, no padding.
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
_encode_claims = msgspec.json.Encoder().encode


class KoreJWTAuth(AuthBase):
    """Sets the `auth` header Kore.ai expects.

    With client credentials every request gets a freshly minted token: apps that enforce `jti`
    accept each token once, and a fresh token can never expire during a long backfill. A token
    is an HMAC-SHA256 over a few claims, signed here with the standard library: the token PyJWT
    writes for the same claims, at a fraction of its CPU (its key checks and warning filters
    per call cost more than the signature, on every request).
    """

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        auth_token: str | None = None,
    ) -> None:
        if not auth_token and not (client_id and client_secret):
            msg = "either auth_token or both client_id and client_secret are needed"
            raise ValueError(msg)
        self._client_id = client_id
        self._client_secret = client_secret
        self._auth_token = auth_token
        self._key = (client_secret or "").encode("utf-8")

    def __repr__(self) -> str:
        # Never let a secret reach a log line through a repr.
        return f"KoreJWTAuth(client_id={self._client_id!r})"

    def mint(self, now: float | None = None) -> str:
        """A new HS256 token with appId, sub, iat, exp and a unique jti."""
        if self._auth_token:
            return self._auth_token
        issued = int(now if now is not None else time.time())
        claims = {
            "appId": self._client_id,
            "sub": "tap-kore-billing",
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        signing_input = _HEADER + b"." + _b64(_encode_claims(claims))
        signature = hmac.new(self._key, signing_input, hashlib.sha256).digest()
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["auth"] = self.mint()
        return request


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")
