"""The `auth` header: a fresh HS256 token per request, the one PyJWT writes for the same claims,
with a jti never used before; a ready token from settings as it is."""

from __future__ import annotations

import warnings

import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from tap_kore_billing.client.auth import TOKEN_LIFETIME_SECONDS, KoreJWTAuth

SECRET = "a-client-secret-of-the-usual-length-0123"


def decoded(token: str, secret: str = SECRET) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})


def test_the_token_is_the_one_pyjwt_writes_for_the_same_claims():
    auth = KoreJWTAuth(client_id="cs-1234", client_secret=SECRET)
    token = auth.mint(now=1_700_000_000)
    claims = decoded(token)
    assert claims["appId"] == "cs-1234"
    assert claims["sub"] == "tap-kore-billing"
    assert claims["iat"] == 1_700_000_000
    assert claims["exp"] == 1_700_000_000 + TOKEN_LIFETIME_SECONDS
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        assert token == jwt.encode(claims, SECRET, algorithm="HS256")


def test_every_token_has_a_new_jti():
    auth = KoreJWTAuth(client_id="cs-1234", client_secret=SECRET)
    jtis = {decoded(auth.mint(now=1_700_000_000))["jti"] for _ in range(200)}
    assert len(jtis) == 200


def test_a_short_or_non_ascii_secret_signs_too():
    for secret in ("short", "sécret-ключ"):
        auth = KoreJWTAuth(client_id="cs-1", client_secret=secret)
        assert decoded(auth.mint(), secret)["appId"] == "cs-1"
        with pytest.raises(jwt.InvalidSignatureError):
            decoded(auth.mint(), secret + "x")


def test_a_ready_token_is_sent_as_it_is():
    assert KoreJWTAuth(auth_token="ready.made.token").mint() == "ready.made.token"
