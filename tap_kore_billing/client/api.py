"""The one Kore.ai API client: every request of every stream goes through `ApiCalls.call`.

`KoreApi` belongs to the tap and holds what the streams share: the host, the JWT auth, the
per-quota-holder limiter (every stream spends the same quota) and one HTTP session per worker
thread. Each stream asks it for its own `ApiCalls`, which counts that stream's requests and
logs that stream's waits and retries under the stream's name.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlparse

import backoff
import msgspec
import requests
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
from singer_sdk.exceptions import RetriableAPIError

from tap_kore_billing.client.api_errors import (
    RETRIED_ERRORS,
    RETRIES_SPENT,
    ApiRequestError,
    InvalidResponseBodyError,
    RequestFailedError,
    api_error_message,
    describe_failure,
    is_connect_failure,
    network_cause,
)
from tap_kore_billing.client.auth import KoreJWTAuth
from tap_kore_billing.client.limiter import RollingLimiter
from tap_kore_billing.client.retries import (
    CHECK_TIMEOUT_SECONDS,
    CHECK_TRIES,
    UNREACHABLE_GIVE_UP_SECONDS,
    retry_wait,
)
from tap_kore_billing.core.words import counted

if t.TYPE_CHECKING:
    from collections.abc import Generator

    from backoff.types import Details

QUOTA_WAIT_LOG_SECONDS = 5.0
_decode = msgspec.json.Decoder().decode  # about twice as fast as json.loads on a page
_encode = msgspec.json.Encoder().encode
# Request URLs as requests prepares them (one per app's path, a few per account).
_PREPARED_URLS: dict[str, str] = {}
_PREPARED_URLS_KEPT = 4096


@dataclass
class FallbackPath:
    """An account-wide path, and the older spelling some hosts still serve instead: the first
    404 on the preferred one switches to the older one for the rest of the run."""

    current: str
    older: str

    def fall_back(self) -> bool:
        """Switch to the older spelling; False if already there."""
        if self.current == self.older:
            return False
        self.current = self.older
        return True


class KoreApi:
    """What every stream shares: host, auth, quota limiter, HTTP sessions, retry settings."""

    def __init__(self, config: t.Mapping[str, t.Any], user_agent: str) -> None:
        self.url_base = str(config["api_url"]).rstrip("/")
        self.host = urlparse(self.url_base).netloc
        self.user_agent = user_agent
        self._credentials = {
            name: config.get(name) for name in ("client_id", "client_secret", "auth_token")
        }
        self.requests_per_minute = int(config["requests_per_minute"])
        self.requests_per_hour = int(config["requests_per_hour"])
        self.limiter = RollingLimiter(
            [(self.requests_per_minute, 60.0), (self.requests_per_hour, 3600.0)]
        )
        self._request_timeout = float(config["request_timeout"])
        self._retry_attempts = int(config["retry_attempts"])
        self.retry_initial_delay = float(config["retry_initial_delay"])
        # Set by `--test`: a connection check should answer in seconds, not after retries.
        self.checking_connection = False
        self._sessions = threading.local()

    @cached_property
    def auth(self) -> KoreJWTAuth:
        """Built at the first request, so discovery (whose catalog does not depend on the
        account) works before any credential is set."""
        return KoreJWTAuth(**self._credentials)

    @property
    def timeout(self) -> float:
        if self.checking_connection:
            return min(self._request_timeout, CHECK_TIMEOUT_SECONDS)
        return self._request_timeout

    @property
    def max_tries(self) -> int:
        if self.checking_connection:
            return min(self._retry_attempts, CHECK_TRIES)
        return self._retry_attempts

    def retry_wait(self, response: requests.Response | None, attempt: int) -> float:
        return retry_wait(
            response,
            attempt,
            initial_delay=self.retry_initial_delay,
            checking_connection=self.checking_connection,
        )

    @property
    def session(self) -> requests.Session:
        # One session per worker thread: requests does not promise a shared one is safe.
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = self._new_session()
        return session

    def send(self, method: str, path: str, body: dict[str, t.Any] | None) -> requests.Response:
        """What `session.request(method, url, json=body, headers=..., auth=self.auth)` sends
        and answers, prepared without what `Session.request` redoes at every request for
        settings that never change in a run: merging the session's headers, params, hooks and
        environment, parsing the URL (once per path here), typing each value through its
        runtime protocols. Cookies, redirects, proxies, TLS and the adapters are requests'
        own, as before; the JSON body is compact."""
        session = self.session
        request = requests.PreparedRequest()
        request.method = method
        request.url = self._url(path)
        headers = request.headers = CaseInsensitiveDict(self._sessions.headers)
        if body is not None:
            request.body = _encode(body)
            headers["Content-Length"] = str(len(request.body))
        elif method not in {"GET", "HEAD"}:
            headers["Content-Length"] = "0"
        self.auth(request)
        request.prepare_cookies(session.cookies)
        return session.send(request, timeout=self.timeout, **self._sessions.send_settings)

    def _url(self, path: str) -> str:
        url = _PREPARED_URLS.get(self.url_base + path)
        if url is None:
            prepared = requests.PreparedRequest()
            prepared.prepare_url(self.url_base + path, None)
            url = t.cast("str", prepared.url)
            if len(_PREPARED_URLS) >= _PREPARED_URLS_KEPT:
                _PREPARED_URLS.clear()
            _PREPARED_URLS[self.url_base + path] = url
        return url

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        # requests reads the proxy variables (and NO_PROXY, the CA bundle variables) from the
        # environment again at every request: a third of the tap's CPU for a 20-row page. The
        # host is one for the whole run, so they are read once here, with the same result;
        # the netrc lookup that trust_env also turns off never applies (auth is always set).
        env = session.merge_environment_settings(self.url_base, {}, None, None, None)
        session.trust_env = False
        session.proxies.update(env["proxies"])
        session.verify = env["verify"]
        if env["cert"] is not None:
            session.cert = env["cert"]
        # What Session.request would merge at each request: the session's default headers with
        # the tap's (in that order), and the settings it hands to Session.send.
        self._sessions.headers = merge_setting(
            {"Content-Type": "application/json", "User-Agent": self.user_agent},
            session.headers,
            dict_class=CaseInsensitiveDict,
        )
        self._sessions.send_settings = {
            "allow_redirects": True,
            **session.merge_environment_settings(self.url_base, {}, None, None, None),
        }
        return session

    def calls_for(self, logger: logging.Logger) -> ApiCalls:
        return ApiCalls(self, logger)


class ApiCalls:
    """One stream's requests: counted, logged under the stream's name, retried when the
    failure is transient."""

    def __init__(self, api: KoreApi, logger: logging.Logger) -> None:
        self.api = api
        self.logger = logger
        self.requests_sent = self.retries = self.throttled = 0
        self._counter_lock = threading.Lock()
        self._waiting_until: dict[str, float] = {}
        self._call = threading.local()  # the current call's start and tries, per worker
        self._retrying = backoff.on_exception(
            self._wait_generator,
            RETRIED_ERRORS,
            max_tries=lambda: self.api.max_tries,
            giveup=self.gives_up,
            on_backoff=self._on_backoff,
            # backoff's own lines ("Backing off _once(...)") would repeat ours.
            jitter=None,
            logger=None,
        )(self.once)

    def call(
        self,
        method: str,
        path: str | FallbackPath,
        body: dict[str, t.Any] | None,
        holder: str,
        *,
        where: str,
        probe: t.Callable[[str], dict[str, t.Any] | None] | None = None,
    ) -> dict[str, t.Any]:
        """One API call (POST with a JSON body, or GET without), waiting for `holder`'s quota
        and retrying what is transient; the answer's JSON object. `probe(path)`, if given,
        may answer first (its None: send the request as usual).

        Raises:
            RequestFailedError: a 4xx other than 429, or every try spent; the message starts
                with `where` the request was made (partition, window, ...).
        """
        target = path.current if isinstance(path, FallbackPath) else path
        self._call.started, self._call.tries = time.monotonic(), 0
        self._call.unanswered_since = None
        try:
            if probe is not None and (answer := probe(target)) is not None:
                return answer
            return t.cast("dict[str, t.Any]", self._retrying(method, target, body, holder))
        except ApiRequestError as exc:
            if (
                isinstance(path, FallbackPath)
                and exc.response.status_code == HTTPStatus.NOT_FOUND
                and path.fall_back()
            ):
                self.logger.info(
                    "%s answered 404; trying the older account-wide path %s", target, path.current
                )
                return self.call(method, path, body, holder, where=where, probe=probe)
            raise RequestFailedError(f"request failed: {where}: {describe_failure(exc)}") from exc
        except (RetriableAPIError, requests.RequestException) as exc:
            seconds = time.monotonic() - self._call.started
            raise RequestFailedError(
                f"{RETRIES_SPENT}{counted(self._call.tries, 'try')} in {seconds:.0f} s: "
                f"{where}: {describe_failure(exc)}"
            ) from exc

    def once(
        self, method: str, path: str, body: dict[str, t.Any] | None, holder: str
    ) -> dict[str, t.Any]:
        """One try, no retries (for probing what the server accepts).

        Raises:
            ApiRequestError: a 4xx answer other than 429.
            RetriableAPIError: 429, 5xx, or a body that is not a JSON object.
            requests.RequestException: the network failed.
        """
        with self._counter_lock:
            self.requests_sent += 1
        self._call.tries = getattr(self._call, "tries", 0) + 1
        api = self.api
        with api.limiter.slot(holder, on_wait=self._log_quota_wait):
            response = api.send(method, path, body)
        status = response.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(f"HTTP {status}: {api_error_message(response)}", response)
        if status >= HTTPStatus.BAD_REQUEST:
            raise ApiRequestError(response)
        try:
            payload = _decode(response.content)
        except msgspec.DecodeError as exc:
            raise InvalidResponseBodyError("the response body is not valid JSON", response) from exc
        if not isinstance(payload, dict):
            raise InvalidResponseBodyError("the response body is not a JSON object", response)
        return payload

    def peak_rate(self) -> float:
        """Calls a second one quota holder may sustain at most (its shortest limit's pace)."""
        return self.api.limiter.peak_rate()

    def spent_by(self, holder: str, at: float) -> int:
        """Requests of `holder` in its rolling minute as it will stand at `at` (monotonic)."""
        return self.api.limiter.spent(holder, at)

    def seconds_until_allowed(self, holder: str) -> float:
        """How long `holder` must wait for its quota now (for the scheduler, which sets the
        partition aside meanwhile); a long wait is logged once, when it starts."""
        wait = self.api.limiter.wait_for(holder)
        if wait >= QUOTA_WAIT_LOG_SECONDS:
            until = time.monotonic() + wait
            with self._counter_lock:
                # The scheduler asks again while the partition waits: one line per wait.
                new_wait = until > self._waiting_until.get(holder, 0.0) + 1.0
                if new_wait:
                    self._waiting_until[holder] = until
            if new_wait:
                self._log_quota_wait(holder, wait)
        return wait

    def gives_up(self, cause: BaseException) -> bool:
        """Whether a retryable failure ends the call anyway: a host that has answered nothing
        (refused, unknown, no connection) for `UNREACHABLE_GIVE_UP_SECONDS` since its first
        unanswered try is not coming back soon. That first one is always retried (a resolver
        can hiccup), however long the quota wait or the connect timeout before it."""
        if not is_connect_failure(cause):
            return False
        now = time.monotonic()
        since = getattr(self._call, "unanswered_since", None)
        if since is None:
            self._call.unanswered_since = now
            return False
        return bool(now - since >= UNREACHABLE_GIVE_UP_SECONDS)

    def note_retry(self, cause: BaseException, wait: float, next_try: int) -> None:
        """Count a retry and say why it happens, naming the host."""
        response = getattr(cause, "response", None)
        throttled = response is not None and response.status_code == HTTPStatus.TOO_MANY_REQUESTS
        with self._counter_lock:
            self.retries += 1
            self.throttled += throttled
        if response is not None:
            reason = f"HTTP {response.status_code} from {self.api.host}"
        else:
            reason = f"{network_cause(cause)}, a {type(cause).__name__}"
        if is_connect_failure(cause) and not self.api.checking_connection:
            # Given up by time, not by count: "of 8" would promise tries that never come.
            plan = (
                f"try {next_try} next; a host that answers nothing is given up "
                f"{UNREACHABLE_GIVE_UP_SECONDS:.0f} s after its first unanswered try"
            )
        else:
            plan = f"try {next_try} of {self.api.max_tries} next"
        self.logger.warning("Retrying in %.2f s after %s (%s)", wait, reason, plan)

    def pause_before_retry(self, cause: BaseException, attempt: int) -> None:
        """Wait as a retry after failed try `attempt` (0-based) would, counted and logged."""
        wait = self.api.retry_wait(getattr(cause, "response", None), attempt)
        self.note_retry(cause, wait, attempt + 2)
        time.sleep(wait)

    def _wait_generator(self) -> Generator[float, t.Any, None]:
        """The waits `retry_wait` gives, one per failed try, for the backoff decorator."""
        attempt = 0
        exception = yield  # type: ignore[misc]  # backoff primes the generator first
        while True:
            exception = yield self.api.retry_wait(getattr(exception, "response", None), attempt)
            attempt += 1

    def _on_backoff(self, details: Details) -> None:
        cause = details.get("exception")
        if cause is not None:
            self.note_retry(cause, details.get("wait") or 0.0, int(details.get("tries") or 0) + 1)

    def _log_quota_wait(self, holder: str, seconds: float) -> None:
        # Short waits pace every request at the quota; only a long pause needs explaining.
        if seconds >= QUOTA_WAIT_LOG_SECONDS:
            self.logger.info(
                "Waiting %.0f s for the quota of %s (requests_per_minute %s, requests_per_hour %s)",
                seconds,
                "the account" if holder == "account" else f"app {holder}",
                self.api.requests_per_minute,
                self.api.requests_per_hour,
            )
