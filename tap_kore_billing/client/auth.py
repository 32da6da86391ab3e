"""The `auth` header: a ready JWT from settings, or one minted per request from credentials."""

from __future__ import annotations

import time
import uuid
import warnings

import jwt
from jwt.warnings import InsecureKeyLengthWarning
from requests import PreparedRequest
from requests.auth import AuthBase

TOKEN_LIFETIME_SECONDS = 300  # short: the API caps exp at one hour ahead when jti is enforced


class KoreJWTAuth(AuthBase):
    """Sets the `auth` header Kore.ai expects.

    With client credentials every request gets a freshly minted token: apps that enforce `jti`
    accept each token once, and a fresh token can never expire during a long backfill. Minting
    an HS256 token costs microseconds against a network round trip.
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
        with warnings.catch_warnings():
            # The secret's length is Kore.ai's choice, not the user's: no warning per request.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode(claims, self._client_secret or "", algorithm="HS256")

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["auth"] = self.mint()
        return request
